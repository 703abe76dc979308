"""ragflow's agent HTTP API on ``/api/v1``: agents, sessions, completions, webhooks, accounts, artifacts.

Every answer uses ragflow's envelope (``{"code", "message", "data"}``, HTTP 200 except 401,
unknown routes and webhooks) and ragflow's messages; ids are 32 hex digits, times milliseconds.
The routers are included in an order that lets fixed paths (``/agents/chat/completions``,
``/agents/tags``) win over the ones with an id in the same place.
"""

from fastapi import APIRouter

from taskcanvas.api.ragflow import accounts, agents, completions, dbcheck, documents, sessions, webhooks

router = APIRouter()
for _part in (completions, dbcheck, agents, sessions, webhooks, accounts, documents):
    router.include_router(_part.router)

__all__ = ["router"]
