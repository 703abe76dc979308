"""The client commands: ``taskcanvas task ...`` and ``taskcanvas agent ...`` against a running server.

They talk HTTP only (``TASKCANVAS_URL``, default http://127.0.0.1:8080, and ``TASKCANVAS_TOKEN``;
``--url`` and ``--token`` on every command), to the same routes a coder or ragflow client uses:
``task`` to coder's Tasks API (``/api/v2``), ``agent`` to ragflow's agent API (``/api/v1``).
Nothing here opens the database or imports the server.
"""

from taskcanvas.cli.client.agents import app as agent_app
from taskcanvas.cli.client.tasks import app as task_app

__all__ = ["agent_app", "task_app"]
