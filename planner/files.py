"""Reading user files at the edge: every failure (unreadable, not UTF-8, malformed, nested too deeply) becomes one
`InputError` line naming the file."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import InputError


def read_text(path: Path | Any, where: str | None = None, encoding: str = "utf-8") -> str:
    """The file's text (`path` may be a Path or an importlib.resources Traversable)."""
    where = where or str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{where}: cannot read ({e.strerror or e})") from None
    if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark (Windows editors write one): not part of the text
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 (byte {e.start})") from None


def _plain(e: ValueError) -> str:
    """Python's message for a too-long integer names an interpreter setting; say what is wrong with the file."""
    if "digits" in str(e) and "int" in str(e):
        return "a number with more than 4300 digits (far beyond any plausible value)"
    return str(e)


def check_output_path(path: str | Path, what: str) -> Path:
    """An output file's path, refused in one line when it is empty, a folder, or in a folder that does not exist
    (checked before the work that produces the file, so nothing is computed for nothing)."""
    if not str(path).strip():
        raise InputError(f"{what}: the path is empty")
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} {path}: is a folder, not a file")
    if not p.parent.is_dir():
        raise InputError(f"{what} {path}: folder {p.parent} does not exist")
    return p


def write_text(path: str | Path, text: str, what: str) -> None:
    """Write an output file; an empty path, a missing folder, a folder, or no permission is one InputError line."""
    p = check_output_path(path, what)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"{what} {path}: cannot write ({e.strerror or e})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path | Any, where: str | None = None, allow_nan: bool = True) -> Any:
    """JSON with one-line errors. With allow_nan=False, NaN and Infinity (which Python's json accepts) are rejected
    here; otherwise they reach the caller's field checks, which can name the field."""
    where = where or str(path)
    text = read_text(path, where)
    try:
        return json.loads(text, parse_constant=None if allow_nan else _no_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except ValueError as e:
        raise InputError(f"{where}: invalid JSON: {_plain(e)}") from None
    except RecursionError:
        raise InputError(f"{where}: invalid JSON: arrays or objects nested too deeply") from None


def read_json_object(path: Path | Any, what: str, allow_nan: bool = True) -> dict[str, Any]:
    """A JSON file whose top level must be an object (`what` names it in the error, e.g. 'a plan')."""
    doc = read_json(path, allow_nan=allow_nan)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object ({what}), got {type(doc).__name__}")
    return doc


def read_toml(path: Path | Any, where: str | None = None) -> dict[str, Any]:
    where = where or str(path)
    text = read_text(path, where)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: invalid TOML: {e}") from None
    except ValueError as e:  # an integer too long to convert
        raise InputError(f"{where}: invalid TOML: {_plain(e)}") from None
    except RecursionError:
        raise InputError(f"{where}: invalid TOML: arrays or tables nested too deeply") from None
