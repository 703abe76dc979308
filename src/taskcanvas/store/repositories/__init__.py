"""Every query taskcanvas runs: one repository per aggregate, each wrapping an ``AsyncSession``.

Repositories flush but never commit; the caller's unit of work (``Database.session()``)
commits or rolls back, so one service call is one transaction.
"""

from taskcanvas.store.repositories.agents import AgentRepository
from taskcanvas.store.repositories.audit import AuditRepository
from taskcanvas.store.repositories.checkpoints import CheckpointRepository
from taskcanvas.store.repositories.events import EventRepository
from taskcanvas.store.repositories.organizations import OrganizationRepository
from taskcanvas.store.repositories.runs import RunRepository
from taskcanvas.store.repositories.sessions import SessionRepository
from taskcanvas.store.repositories.settings import SettingRepository
from taskcanvas.store.repositories.tasks import TaskRepository
from taskcanvas.store.repositories.tokens import TokenRepository
from taskcanvas.store.repositories.users import UserRepository

__all__ = [
    "AgentRepository",
    "AuditRepository",
    "CheckpointRepository",
    "EventRepository",
    "OrganizationRepository",
    "RunRepository",
    "SessionRepository",
    "SettingRepository",
    "TaskRepository",
    "TokenRepository",
    "UserRepository",
]
