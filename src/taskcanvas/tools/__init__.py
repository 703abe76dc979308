"""Ways a canvas reaches the outside world.

:mod:`taskcanvas.tools.http` is the one outbound HTTP client, with the SSRF guard every
component and tool that fetches a URL goes through.
"""

from __future__ import annotations

from taskcanvas.tools.http import GuardedClient, HttpPolicy, SsrfBlocked, create_client

__all__ = ["GuardedClient", "HttpPolicy", "SsrfBlocked", "create_client"]
