"""ragflow's ``GET /documents/artifact/<name>?session_id=...``: a file CodeExec made, from the blob store.

Failures answer as ragflow's ``get_data_error_result`` does: HTTP 200, ``{"code": 102, "message"}``.
The file is sent with the type of its extension, ``nosniff``, and ``inline`` with a safe name.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from taskcanvas.api.deps import PrincipalDep, ServicesDep
from taskcanvas.service.artifacts import read_artifact
from taskcanvas.service.errors import Invalid, NotFound
from taskcanvas.tools.sandbox.artifacts import ArtifactStore

router = APIRouter(tags=["ragflow: documents"])

_DATA_ERROR = 102


@router.get("/documents/artifact/{filename}", summary="A file a CodeExec script made (ragflow's artifact link)")
async def get_artifact(filename: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
    store = services.engine_services.get("artifacts")
    if not isinstance(store, ArtifactStore):
        store = ArtifactStore(services.engine_services["files"])
    try:
        found = await read_artifact(services.database, store, principal, filename,
                                    request.query_params.get("session_id", ""))
    except (Invalid, NotFound) as e:
        return JSONResponse({"code": _DATA_ERROR, "message": e.message})
    safe = re.sub(r"[^\w.\-]", "_", filename)
    return Response(found.content, media_type=found.content_type, headers={
        "Content-Disposition": f'inline; filename="{safe}"',
        "X-Content-Type-Options": "nosniff",
        # An SVG or HTML artifact is the script's output: shown, never run with this origin's rights.
        "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox",
    })
