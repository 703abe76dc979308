"""Serving CodeExec's artifacts: ragflow's ``GET /documents/artifact/<name>?session_id=...`` rule.

ragflow serves an artifact to a caller who may read the session named by ``session_id`` (or one
whose messages mention the file). Here the session must be one the caller may read (their own;
any for an organization's owners and auditors), and the name must be ``<32 hex><ext>`` of a stored
file of an allowed kind. Whatever is wrong, the answer is the same "not found", so a caller learns
nothing about files or sessions they may not see.
"""

from __future__ import annotations

from typing import Final

from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Invalid, NotFound
from taskcanvas.service.rbac import Action, Resource, ResourceKind, authorize
from taskcanvas.service.sessions import parse_id
from taskcanvas.store import Database
from taskcanvas.store.repositories import AgentRepository, SessionRepository
from taskcanvas.tools.sandbox.artifacts import ARTIFACT_CONTENT_TYPES, ArtifactStore, StoredArtifact

__all__ = ["ARTIFACT_NOT_FOUND", "read_artifact"]

ARTIFACT_NOT_FOUND: Final = "Artifact not found."


async def read_artifact(database: Database, store: ArtifactStore, principal: Principal, name: str,
                        session_id: str) -> StoredArtifact:
    """The artifact ``name`` of the session ``session_id``, if the caller may read that session.

    Raises :class:`Invalid` for a name that is not a plain file name of an allowed kind (ragflow's
    "Invalid filename." / "invalid file type") and :class:`NotFound` otherwise.
    """
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise Invalid("Invalid filename.")
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if ext not in ARTIFACT_CONTENT_TYPES:
        raise Invalid("invalid file type")
    wanted = parse_id(session_id)
    async with database.reading() as s:
        row = await SessionRepository(s).get(wanted) if wanted is not None else None
        agent = await AgentRepository(s).get(row.agent_id) if row is not None else None
    if row is None or agent is None:
        raise NotFound(ARTIFACT_NOT_FOUND)
    resource = Resource(ResourceKind.SESSION, org_id=agent.organization_id, owner_id=row.user_id)
    if not authorize(principal, Action.READ, resource).allowed:
        raise NotFound(ARTIFACT_NOT_FOUND)
    found = await store.open(name)
    if found is None:
        raise NotFound(ARTIFACT_NOT_FOUND)
    return found
