"""The service layer: the rules between the faces (CLI, HTTP) and the store.

Authentication (:mod:`.auth`), authorization (:mod:`.rbac`) and the errors every service raises
(:mod:`.errors`). Nothing here does I/O: the store layer supplies rows, the faces supply requests.
"""

from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, Unauthorized
from taskcanvas.service.rbac import Action, Decision, Resource, ResourceKind, authorize, require

__all__ = [
    "Action",
    "Conflict",
    "Decision",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Principal",
    "Resource",
    "ResourceKind",
    "ServiceError",
    "Unauthorized",
    "authorize",
    "require",
]
