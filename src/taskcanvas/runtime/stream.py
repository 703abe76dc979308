"""Text that is produced while it is read: a streamed answer or a streaming Message.

A component may leave a :class:`TextStream` as an output value instead of a string
(ragflow's "partial"). Whoever reads it first consumes it chunk by chunk; once consumed it
remembers the whole text, so later readers get the string.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable


class TextStream:
    """An output value whose text arrives in chunks; read it once with ``async for``."""

    __slots__ = ("_chunks", "_on_done", "_parts", "done")

    def __init__(self, chunks: AsyncIterator[str], on_done: Callable[[str], None] | None = None) -> None:
        self._chunks = chunks
        self._on_done = on_done
        self._parts: list[str] = []
        self.done = False

    @property
    def text(self) -> str:
        """The text read so far (the whole text once :attr:`done`)."""
        return "".join(self._parts)

    async def __aiter__(self) -> AsyncIterator[str]:
        if self.done:
            if self._parts:
                yield self.text
            return
        async for chunk in self._chunks:
            self._parts.append(chunk)
            yield chunk
        self.done = True
        if self._on_done is not None:
            self._on_done(self.text)

    async def read(self) -> str:
        """Consume the rest and return the whole text."""
        async for _ in self:
            pass
        return self.text
