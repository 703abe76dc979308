"""Component types by ragflow ``component_name``: an explicit table, open to plug-ins.

The built-in table lives in ``taskcanvas.components``; third-party packages add types through
the ``taskcanvas.components`` entry point group (each entry point names a Component subclass).
Types that ragflow has but taskcanvas does not run yet are listed with the reason, so a canvas
using them fails validation saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points

from taskcanvas.runtime.component import Component

ENTRY_POINT_GROUP = "taskcanvas.components"


class Registry:
    """Maps ``component_name`` to a :class:`Component` class."""

    def __init__(self, components: Iterable[type[Component]] = (),
                 unavailable: Mapping[str, str] | None = None) -> None:
        self._types: dict[str, type[Component]] = {}
        self._unavailable = dict(unavailable or {})
        for cls in components:
            self.register(cls)

    def register(self, cls: type[Component]) -> type[Component]:
        if not cls.component_name:
            raise ValueError(f"{cls.__name__} has no component_name")
        self._types[cls.component_name] = cls
        self._unavailable.pop(cls.component_name, None)
        return cls

    def get(self, name: str) -> type[Component] | None:
        return self._types.get(name)

    def why_unavailable(self, name: str) -> str:
        """A sentence for a user whose canvas uses the type ``name`` that is not registered."""
        if name in self._unavailable:
            return f"component type {name!r} {self._unavailable[name]}"
        return f"unknown component type {name!r}"

    def names(self) -> list[str]:
        return sorted(self._types)

    def load_entry_points(self) -> None:
        """Register every component class published under :data:`ENTRY_POINT_GROUP`."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            cls = ep.load()
            if isinstance(cls, type) and issubclass(cls, Component):
                self.register(cls)
