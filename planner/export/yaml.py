"""A small YAML emitter for the configs the exporters write (dicts, lists, strings, numbers, booleans).

PyYAML is not a dependency. Strings are written double-quoted with JSON escapes, which YAML 1.2 reads as the same
string, so no value can turn into a number, a boolean or a null by accident."""
from __future__ import annotations

import json
import re
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


def _key(k: str) -> str:
    return k if _PLAIN_KEY.match(k) and k.lower() not in {"true", "false", "null", "yes", "no", "on", "off"} else json.dumps(k)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(str(v))


def _lines(obj: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return [pad + "{}"]
        out = []
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_key(k)}:")
                out.extend(_lines(v, indent + 2))
            else:
                out.append(f"{pad}{_key(k)}: {_scalar(v) if not isinstance(v, (dict, list)) else ('{}' if isinstance(v, dict) else '[]')}")
        return out
    if isinstance(obj, list):
        if not obj:
            return [pad + "[]"]
        out = []
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = _lines(item, indent + 2)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_scalar(item) if not isinstance(item, (dict, list)) else ('{}' if isinstance(item, dict) else '[]')}")
        return out
    return [pad + _scalar(obj)]


def dump(obj: Any) -> str:
    """One YAML document."""
    return "\n".join(_lines(obj, 0)) + "\n"


def dump_all(docs: list[Any]) -> str:
    """Several documents separated by `---`."""
    return "---\n".join(dump(d) for d in docs)
