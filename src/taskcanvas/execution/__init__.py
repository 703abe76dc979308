"""Where runs execute (DESIGN.md, "Two deployments"): in this process for the embedded server.

:class:`Executor` runs queued runs with bounded concurrency and recovers interrupted ones on
start; :class:`EventHub` fans events out to live readers; :func:`follow` reads a run's events
from any point, stored then live.
"""

from taskcanvas.execution.hub import EventHub
from taskcanvas.execution.runner import ACTIVE_STATUSES, PAUSED, QUEUED, RUNNING, Executor, FirstRun
from taskcanvas.execution.streams import follow, stored

__all__ = ["ACTIVE_STATUSES", "PAUSED", "QUEUED", "RUNNING", "EventHub", "Executor", "FirstRun", "follow", "stored"]
