"""Errors of model calls, each with a message a user can act on.

    TaskcanvasError
    └── ModelError                 a model call failed (provider, model and reason in the message)
        ├── ModelNotConfigured     no provider serves this llm_id (says how to configure one)
        ├── ModelAuthError         the provider refused the credentials
        ├── ModelRateLimited       the provider asked to slow down (retried with backoff first)
        ├── ContextTooLong         the prompt does not fit the model's context window
        └── ModelUnavailable       the endpoint could not be reached or failed (retried first)
"""

from __future__ import annotations

from taskcanvas.errors import TaskcanvasError


class ModelError(TaskcanvasError):
    """A model call failed."""

    retryable = False
    retry_after: float | None = None
    """Seconds the provider asked us to wait before trying again (``Retry-After``), if it said."""


class ModelNotConfigured(ModelError):
    def __init__(self, llm_id: str, hint: str) -> None:
        self.llm_id = llm_id
        super().__init__(f"no model is configured for llm_id {llm_id!r}: {hint}")


class ModelAuthError(ModelError):
    pass


class ModelRateLimited(ModelError):
    retryable = True


class ContextTooLong(ModelError):
    pass


class ModelUnavailable(ModelError):
    retryable = True
