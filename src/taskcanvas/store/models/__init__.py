"""The tables, one module per aggregate; importing this module registers them all on ``Base.metadata``."""

from taskcanvas.store.models.agents import Agent, AgentVersion, Preset
from taskcanvas.store.models.audit import AuditEntry
from taskcanvas.store.models.base import Base
from taskcanvas.store.models.checkpoints import CheckpointDelta, CheckpointSnapshot
from taskcanvas.store.models.settings import SiteSetting
from taskcanvas.store.models.tasks import Run, RunEvent, Session, Task, TaskStateEntry
from taskcanvas.store.models.tokens import ApiToken
from taskcanvas.store.models.users import Membership, Organization, Role, User

__all__ = [
    "Agent",
    "AgentVersion",
    "ApiToken",
    "AuditEntry",
    "Base",
    "CheckpointDelta",
    "CheckpointSnapshot",
    "Membership",
    "Organization",
    "Preset",
    "Role",
    "Run",
    "RunEvent",
    "Session",
    "SiteSetting",
    "Task",
    "TaskStateEntry",
    "User",
]
