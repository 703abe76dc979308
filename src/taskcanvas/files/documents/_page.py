"""What goes around a document's text: header, footer, watermark, page numbers, timestamp, size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSetup:
    """Decorations of a paged document (PDF, DOCX); the text formats show only the timestamp."""

    header: str = ""
    footer: str = ""
    watermark: str = ""
    page_numbers: bool = False
    timestamp: str = ""
    """Text shown in the footer (in the body, first, for text formats); empty for none."""
    font_size: float = 12
    title: str = ""
    """The document's title in its metadata (and the HTML ``<title>``)."""

    def heading_size(self, level: int) -> float:
        """ragflow's sizes: body + 6, + 4, + 2 for the first three levels, then the body size."""
        base = int(self.font_size)
        return base + {1: 6, 2: 4, 3: 2}.get(level, 0)

    @property
    def has_decorations(self) -> bool:
        return bool(self.header or self.footer or self.watermark or self.page_numbers or self.timestamp)
