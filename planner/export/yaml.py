"""YAML for the configs the exporters write (Kubernetes manifests, TensorRT-LLM's extra options file), emitted by
PyYAML's `safe_dump`: a real emitter quotes and escapes every string (a value that reads as a number, a boolean,
a document marker or a comment stays a string; line breaks and control characters are escaped), where a template
cannot be trusted with user text. Keys keep the order the exporter built them in."""
from __future__ import annotations

from typing import Any

import yaml

from ..text import is_unsafe_char


class _Dumper(yaml.SafeDumper):
    """SafeDumper, except that a string holding a control character or a line separator is written double-quoted,
    where YAML escapes it: PyYAML 6 writes NEL (U+0085) raw in plain and single-quoted scalars, and a reader folds it
    into a space."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(is_unsafe_char(c) for c in text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)
_OPTIONS = {"Dumper": _Dumper, "sort_keys": False, "allow_unicode": True, "default_flow_style": False,
            "width": 1 << 16}


def dump(obj: Any) -> str:
    """One YAML document."""
    return yaml.dump(obj, **_OPTIONS)


def dump_all(docs: list[Any]) -> str:
    """Several documents, each starting with `---`."""
    return yaml.dump_all(docs, explicit_start=True, **_OPTIONS)
