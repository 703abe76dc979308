"""Errors of the service layer: what a caller asked for and may not have, or got wrong.

    TaskcanvasError
    └── ServiceError               .status_code (the HTTP face maps it), .message, .detail
        ├── Unauthorized   401     no credentials, or credentials that are not (or no longer) valid
        ├── Forbidden      403     the caller can see the thing but may not do this to it
        ├── NotFound       404     it does not exist, *or* the caller may not see it (one message for both)
        ├── Conflict       409     a valid request that the thing's current state refuses
        └── Invalid        400     bad input; ``field`` names the offending field when there is one

``message`` is the one line a user reads; ``detail`` adds the why or the what-next (coder's
``{"message", "detail"}`` body); ``str(error)`` joins them. Most permission denials are
:class:`NotFound` with the same words as a missing object, so a caller cannot probe for things
it may not see; :class:`Forbidden` is kept for what the caller can already see (coder's 403s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from taskcanvas.errors import TaskcanvasError

NOT_FOUND_MESSAGE = "Resource not found or you do not have access to this resource"
"""coder's words for every 404: the same whether the object is missing or hidden."""

SIGNED_OUT_MESSAGE = "You are signed out or your session has expired. Please sign in again to continue."
"""coder's words for every 401; the detail says which check failed."""


class ServiceError(TaskcanvasError):
    """A request the service refuses; ``status_code`` is what the HTTP face answers."""

    status_code: ClassVar[int] = 500

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        self.message = message
        self.detail = detail
        super().__init__(f"{message} {detail}" if detail else message)


class Unauthorized(ServiceError):
    """No usable credentials: missing, malformed, unknown, wrong secret, expired or revoked."""

    status_code = 401

    def __init__(self, detail: str | None = None, *, message: str = SIGNED_OUT_MESSAGE) -> None:
        super().__init__(message, detail=detail)


class Forbidden(ServiceError):
    """The caller can see the resource but may not do this to it."""

    status_code = 403

    def __init__(
        self,
        detail: str | None = "You don't have permission to do this. If you believe this is a mistake, "
        "please contact your administrator.",
        *,
        message: str = "Forbidden.",
    ) -> None:
        super().__init__(message, detail=detail)


class NotFound(ServiceError):
    """Missing, deleted, or not visible to the caller: deliberately indistinguishable."""

    status_code = 404

    def __init__(self, message: str = NOT_FOUND_MESSAGE, *, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)


class Conflict(ServiceError):
    """A valid request that the resource's current state refuses (paused task, name taken, ...)."""

    status_code = 409


class Invalid(ServiceError):
    """Bad input; ``field`` names the field at fault (coder's ``validations[].field``).

    ``validations`` carries coder's ``validations`` list as ``(field, detail)`` pairs when one
    input holds several faults (a search query's elements); ``str()`` lists them so a CLI user
    sees what was wrong, not only the summary line.
    """

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, detail: str | None = None,
                 validations: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.validations: tuple[tuple[str, str], ...] = tuple(validations)
        super().__init__(message, detail=detail)

    def __str__(self) -> str:
        text = super().__str__()
        if self.validations:
            text += "".join(f" {field}: {detail.rstrip('.')}." for field, detail in self.validations)
        return f"{self.field}: {text}" if self.field else text
