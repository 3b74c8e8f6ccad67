"""User text at the edge and where it lands.

Names, paths and descriptions from users reach shell scripts (comments and arguments), YAML manifests, HTML and the
terminal. A line break or another control character there can end a comment and start a command (`evil\\ntouch
PWNED`), add a YAML document, or rewrite the terminal. So text with such characters is refused where it enters
(`check_text`: one line, exit 2), and text written where a line break would matter goes through `one_line`, which
escapes them anyway."""
from __future__ import annotations

import unicodedata
from typing import Any

from .errors import InputError


def is_unsafe_char(c: str) -> bool:
    """Control (Cc), format (Cf: bidi overrides, zero-width), surrogate (Cs), private-use (Co), unassigned (Cn)
    characters and the line/paragraph separators (Zl, Zp): what shells, YAML (NEL, LS, PS are line breaks there)
    and terminals may read as structure rather than text."""
    cat = unicodedata.category(c)
    return cat[0] == "C" or cat in ("Zl", "Zp")


def unsafe_chars(text: str) -> list[str]:
    return [c for c in text if is_unsafe_char(c)]


def check_text(value: Any, where: str) -> Any:
    """`value` unchanged if it is not a string or has no unsafe character; otherwise one-line InputError naming the
    first one (e.g. "U+000A")."""
    if isinstance(value, str):
        bad = unsafe_chars(value)
        if bad:
            raise InputError(f"{where} contains a control character (U+{ord(bad[0]):04X}) in '{one_line(value)[:200]}': "
                             "names, paths and descriptions must be printable text")
    return value


def one_line(text: str) -> str:
    """`text` with every unsafe character written as a \\uXXXX escape (a backslash stays itself): safe inside a shell
    or YAML comment and on a terminal, and still readable."""
    if not any(is_unsafe_char(c) for c in text):
        return text
    return "".join(_escape(c) if is_unsafe_char(c) else c for c in text)


def _escape(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
