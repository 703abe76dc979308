"""Variable references in canvas text: ``{cpn@var.path}``, ``{sys.x}``, ``{env.x}``.

The patterns are ragflow's, character for character, so the same text finds the same
references. One deliberate difference, everywhere a whole match is replaced: ragflow's match
swallows the spaces next to the braces (``"Hello {sys.query}!"`` streams as ``"HelloBob!"``);
:func:`split_text` hands those spaces back as literal text, which is what every author means.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

VARIABLE_REF = re.compile(
    r"\{* *\{([a-zA-Z0-9_:]+@[A-Za-z0-9_.-]+|sys\.[A-Za-z0-9_.]+|env\.[A-Za-z0-9_.]+)\} *\}*",
    re.IGNORECASE | re.DOTALL,
)
# Message streaming in ragflow matches without IGNORECASE; the groups can only differ in case of
# the literal ``sys.``/``env.`` prefixes.
VARIABLE_REF_CASED = re.compile(VARIABLE_REF.pattern, re.DOTALL)
ITERATION_ALIAS = re.compile(r"\{* *\{(item|index|result)\} *\}*", re.IGNORECASE | re.DOTALL)
_HEADER_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_.@-]*)\}")


def strip_ref(exp: str) -> str:
    """The bare reference inside optional braces and spaces (ragflow's exact stripping)."""
    return exp.strip("{").strip("}").strip(" ").strip("{").strip("}")


def split_ref(exp: str) -> tuple[str, str]:
    """``("cpn", "var.path")`` for a component reference, ``("", exp)`` for a global."""
    cpn_id, sep, var = exp.partition("@")
    return (cpn_id, var) if sep else ("", exp)


def find_refs(text: str) -> list[str]:
    """Every reference in ``text``, in order, duplicates kept."""
    return [m.group(1) for m in VARIABLE_REF.finditer(text)]


def split_text(text: str, pattern: re.Pattern[str] = VARIABLE_REF) -> Iterator[tuple[bool, str]]:
    """``(is_ref, piece)`` pairs covering ``text``: literal pieces and reference names.

    Spaces that the pattern swallows next to a reference are returned as literal text, joined
    to the literal piece they border, so a streamed Message sends the pieces ragflow sends with
    the spaces kept (``"Hello {sys.query}!"`` → ``"Hello "``, ``"Bob"``, ``"!"``).
    """
    pos = 0
    pending = ""
    for m in pattern.finditer(text):
        start, end = m.span()
        inner_start, inner_end = m.span(1)
        # Keep the spaces the match took outside the braces; spaces between braces go with them.
        lead = text[start:inner_start]
        lead = "" if lead.startswith("{") else lead.rstrip("{")
        trail = text[inner_end:end]
        trail = "" if trail.endswith("}") and trail.strip() != "}" else trail.lstrip("}")
        literal = pending + text[pos:start] + lead
        if literal:
            yield False, literal
        yield True, m.group(1)
        pending = trail
        pos = end
    rest = pending + text[pos:]
    if rest:
        yield False, rest


def header_placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders of an Invoke header value."""
    return _HEADER_PLACEHOLDER.findall(text)
