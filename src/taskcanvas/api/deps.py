"""What every route needs from a request: the services, the caller, where the call came from."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from taskcanvas.service.audit import Origin
from taskcanvas.service.auth import Principal
from taskcanvas.service.services import Services


# Dependencies are coroutines even where nothing is awaited: FastAPI runs a plain function in a
# worker thread, a hand-off that costs more than the route's own work here.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_principal(request: Request) -> Principal:
    """The authenticated caller; Unauthorized (401) without a valid token."""
    services = await get_services(request)
    return await services.accounts.authenticate(request.headers)


async def get_origin(request: Request) -> Origin:
    client = request.client.host if request.client is not None else None
    return Origin(ip=client, user_agent=request.headers.get("user-agent"),
                  request_id=request.headers.get("x-request-id"))


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OriginDep = Annotated[Origin, Depends(get_origin)]
