"""Fonts for PDF output, found without downloading anything.

The body face is DejaVu Sans when the system has it (most Linux systems: Latin, Greek,
Cyrillic and more), else Bitstream Vera, which ships inside reportlab (Latin). Chinese,
Japanese and Korean text is set in a TrueType CJK font the system has (WenQuanYi, Droid Sans
Fallback), embedded; without one, in the Adobe CID fonts PDF readers bring along
(``STSong-Light``, ``HYSMyeongJo-Medium``), referred to and not embedded.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import reportlab
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts",
)
CJK_FONT = "STSong-Light"
HANGUL_FONT = "HYSMyeongJo-Medium"
_CJK_FILES = ("wqy-zenhei.ttc", "wqy-microhei.ttc", "DroidSansFallbackFull.ttf", "DroidSansFallback.ttf")
_CJK = "\u2e80-\u2fdf\u3000-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_RUNS = re.compile(f"([{_CJK}]+)|([{_HANGUL}]+)")
_LOCK = threading.Lock()
_Flag = Literal[0, 1]
_VARIANTS: tuple[tuple[_Flag, _Flag, str], ...] = (
    (0, 0, "regular"), (1, 0, "bold"), (0, 1, "italic"), (1, 1, "bold_italic"))

_DEJAVU = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "italic": "DejaVuSans-Oblique.ttf",
           "bold_italic": "DejaVuSans-BoldOblique.ttf", "mono": "DejaVuSansMono.ttf",
           "mono_bold": "DejaVuSansMono-Bold.ttf"}
_VERA = {"regular": "Vera.ttf", "bold": "VeraBd.ttf", "italic": "VeraIt.ttf", "bold_italic": "VeraBI.ttf"}


@dataclass(frozen=True)
class Fonts:
    """Registered font names: the body family (``<b>``/``<i>`` map within it) and the code face."""

    body: str
    bold: str
    mono: str
    cjk: str = CJK_FONT
    hangul: str = HANGUL_FONT


def split_scripts(text: str, fonts: Fonts) -> list[tuple[str | None, str]]:
    """``text`` in runs: ``(None, latin_etc)``, ``(fonts.cjk, chinese_japanese)``, ``(fonts.hangul, korean)``."""
    runs: list[tuple[str | None, str]] = []
    pos = 0
    for m in _RUNS.finditer(text):
        if m.start() > pos:
            runs.append((None, text[pos:m.start()]))
        runs.append((fonts.cjk if m.group(1) else fonts.hangul, m.group(0)))
        pos = m.end()
    if pos < len(text):
        runs.append((None, text[pos:]))
    return runs


def _find(names: Iterable[str], dirs: Iterable[str]) -> dict[str, Path]:
    wanted = set(names)
    found: dict[str, Path] = {}
    for d in dirs:
        root = Path(os.path.expanduser(d))
        if not root.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in wanted.intersection(filenames):
                found.setdefault(name, Path(dirpath) / name)
            if len(found) == len(wanted):
                return found
    return found


@lru_cache(maxsize=1)
def pdf_fonts() -> Fonts:
    """Register the fonts once per process and name them."""
    with _LOCK:
        system = _find((*_DEJAVU.values(), *_CJK_FILES), FONT_DIRS)
        if all(_DEJAVU[k] in system for k in ("regular", "bold", "italic", "bold_italic")):
            files = {k: system[v] for k, v in _DEJAVU.items() if v in system}
        else:
            bundled = Path(reportlab.__file__).parent / "fonts"
            files = {k: bundled / v for k, v in _VERA.items()}
            files.update({k: system[_DEJAVU[k]] for k in ("mono", "mono_bold") if _DEJAVU[k] in system})
        names = {k: f"TC-{k}" for k in files}
        for key, path in files.items():
            pdfmetrics.registerFont(TTFont(names[key], str(path)))
        body = names["regular"]
        for bold, italic, key in _VARIANTS:
            addMapping(body, bold, italic, names[key])
        mono = names.get("mono", "Courier")
        if mono != "Courier":
            mono_bold = names.get("mono_bold", mono)
            for bold, italic, _key in _VARIANTS:
                addMapping(mono, bold, italic, mono_bold if bold else mono)
        cjk, hangul = _cjk_font([system[n] for n in _CJK_FILES if n in system])
        for face in {cjk, hangul}:
            for bold, italic, _key in _VARIANTS:
                addMapping(face, bold, italic, face)
        return Fonts(body=body, bold=names["bold"], mono=mono, cjk=cjk, hangul=hangul)


def _cjk_font(candidates: list[Path]) -> tuple[str, str]:
    """An embeddable CJK TrueType font covering Hangul too, else the two CID fonts."""
    for path in candidates:
        try:
            pdfmetrics.registerFont(TTFont("TC-cjk", str(path), subfontIndex=0))
        except Exception:  # a collection reportlab cannot read: try the next one
            continue
        return "TC-cjk", "TC-cjk"
    for cid in (CJK_FONT, HANGUL_FONT):
        pdfmetrics.registerFont(UnicodeCIDFont(cid))
    return CJK_FONT, HANGUL_FONT
