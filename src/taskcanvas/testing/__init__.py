"""Helpers for testing canvases and the code around them against real HTTP, not mocks.

:class:`ScriptedModelServer` is an OpenAI-compatible chat server on loopback whose answers are
scripted by :class:`Rule` / :class:`Reply`; point a model configuration (``base_url``) or
``OPENAI_BASE_URL`` at its :attr:`~ScriptedModelServer.base_url`.

Names are imported on first use, so that ``python -m taskcanvas.testing.model_server`` runs
the module once, as the program, rather than after this package already imported it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskcanvas.testing.model_server import Reply, Rule, Script, ScriptedModelServer, load_script

__all__ = ["Reply", "Rule", "Script", "ScriptedModelServer", "load_script"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from taskcanvas.testing import model_server

        return getattr(model_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
