"""The HTTP faces: coder's Tasks API (``/api/v2``, ``/api/experimental``), ragflow's agent API
(``/api/v1``), and the system routes (``/healthz``, ``/metrics``, ``/openapi.json``).

Faces parse requests, call the use cases in :mod:`taskcanvas.service` and render their answers
in each client's shape; no business rule lives here. :func:`create_app` builds the application.
"""

from taskcanvas.api.app import create_app

__all__ = ["create_app"]
