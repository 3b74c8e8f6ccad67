"""The simulated requests: arrival times and token lengths, drawn from distributions or read from a trace file.

Arrivals: gamma-distributed inter-arrival times with mean 1/rate and shape `burstiness` (k): k = 1 is a Poisson
process, k < 1 is burstier (coefficient of variation 1/√k), k > 1 smoother — the convention of vLLM's
`benchmark_serving.py --burstiness`.

Lengths (each with the plan's mean): `fixed` (every request exactly the mean), `uniform` (integers uniform on
[1, 2·mean − 1]), `exponential` (1 + a geometric count: mean as given, coefficient of variation ≈ 1).

Trace files: CSV with a header row, or JSONL with one object per line, giving for each request its arrival time
in seconds and its input and output tokens (column names below; rows need not be sorted)."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..numbers import is_real
from ..files import read_text

LENGTH_DISTRIBUTIONS = ("fixed", "uniform", "exponential")
TRACE_COLUMNS = {
    "arrival_s": ("arrival_s", "arrival_time_s", "arrival_time", "timestamp_s", "timestamp", "time_s"),
    "input_tokens": ("input_tokens", "isl", "prompt_tokens", "input_len"),
    "output_tokens": ("output_tokens", "osl", "completion_tokens", "output_len"),
}


@dataclass(frozen=True)
class Requests:
    arrival_s: np.ndarray  # float64, non-decreasing
    input_tokens: np.ndarray  # int64 ≥ 1
    output_tokens: np.ndarray  # int64 ≥ 1

    def __len__(self) -> int:
        return int(self.arrival_s.size)


MIN_RATE_RPS, MAX_RATE_RPS = 1e-6, 1e9

def arrival_times_s(rng: np.random.Generator, rate_rps: float, *, count: int | None = None,
                    duration_s: float | None = None, burstiness: float = 1.0) -> np.ndarray:
    """`count` arrivals, or every arrival in [0, duration_s), of a gamma renewal process (first one at its first
    inter-arrival time)."""
    if not rate_rps > 0 or not math.isfinite(rate_rps):
        raise InputError(f"--rate-rps must be a finite number > 0, got {rate_rps!r}")
    if not MIN_RATE_RPS <= rate_rps <= MAX_RATE_RPS:  # arrival times would underflow or overflow float seconds
        raise InputError(f"--rate-rps (or the plan's rate) must be within {MIN_RATE_RPS:g}..{MAX_RATE_RPS:g} "
                         f"requests/s, got {rate_rps!r}")
    if not burstiness > 0 or not math.isfinite(burstiness):
        raise InputError(f"--burstiness must be a finite number > 0, got {burstiness!r}")
    scale = 1.0 / (rate_rps * burstiness)  # gamma(k, θ) has mean kθ = 1/rate
    if count is not None:
        return np.cumsum(rng.gamma(burstiness, scale, size=count))
    assert duration_s is not None
    parts, t = [], 0.0
    while t < duration_s:
        block = np.cumsum(rng.gamma(burstiness, scale, size=int(rate_rps * duration_s * 0.25) + 64)) + t
        parts.append(block)
        t = float(block[-1])
    times = np.concatenate(parts)
    return times[times < duration_s]


def draw_lengths(rng: np.random.Generator, mean: int, count: int, distribution: str) -> np.ndarray:
    if distribution == "fixed":
        return np.full(count, int(mean), np.int64)
    if distribution == "uniform":
        return rng.integers(1, 2 * int(mean), size=count, endpoint=False).astype(np.int64)
    if distribution == "exponential":
        if mean <= 1:
            return np.ones(count, np.int64)
        return rng.geometric(1.0 / mean, size=count).astype(np.int64)
    raise InputError(f"--lengths must be one of {', '.join(LENGTH_DISTRIBUTIONS)}, got {distribution!r}")


def synthetic_requests(rng: np.random.Generator, *, rate_rps: float, isl: int, osl: int, count: int | None = None,
                       duration_s: float | None = None, burstiness: float = 1.0,
                       lengths: str = "fixed") -> Requests:
    if lengths not in LENGTH_DISTRIBUTIONS:
        raise InputError(f"--lengths must be one of {', '.join(LENGTH_DISTRIBUTIONS)}, got {lengths!r}")
    arrivals = arrival_times_s(rng, rate_rps, count=count, duration_s=duration_s, burstiness=burstiness)
    n = arrivals.size
    return Requests(arrivals, draw_lengths(rng, isl, n, lengths), draw_lengths(rng, osl, n, lengths))


# ---- trace files -------------------------------------------------------------------------------------------------
def load_trace(path: str | Path) -> Requests:
    """Read a CSV (header row) or JSONL trace; the format follows the suffix (.jsonl/.ndjson, else CSV)."""
    p = Path(path)
    text = read_text(p, encoding="utf-8-sig")  # traces exported from spreadsheets often start with a BOM
    rows = _jsonl_rows(text, p) if p.suffix.lower() in (".jsonl", ".ndjson") else _csv_rows(text, p)
    if not rows:
        raise InputError(f"{p}: the trace holds no requests")
    arr = np.asarray([r[0] for r in rows], float)
    isl = np.asarray([r[1] for r in rows], np.int64)
    osl = np.asarray([r[2] for r in rows], np.int64)
    order = np.argsort(arr, kind="stable")
    return Requests(arr[order], isl[order], osl[order])


def _pick(keys: list[str], field: str, where: str) -> str:
    for alias in TRACE_COLUMNS[field]:
        if alias in keys:
            return alias
    raise InputError(f"{where}: no {field} column (accepted names: {', '.join(TRACE_COLUMNS[field])})")


def _row(values: dict, names: dict[str, str], where: str) -> tuple[float, int, int]:
    out = []
    for field, key in names.items():
        v = values.get(key)
        if isinstance(v, str):
            v = v.strip()
            try:
                v = float(v)
            except ValueError:
                raise InputError(f"{where}: {key} must be a number, got {values.get(key)!r}") from None
        if not is_real(v):
            raise InputError(f"{where}: {key} must be a finite number, got {values.get(key)!r}")
        if field == "arrival_s":
            if v < 0:
                raise InputError(f"{where}: {key} must be >= 0, got {v!r}")
            out.append(float(v))
        else:
            if v != int(v) or v < 1:
                raise InputError(f"{where}: {key} must be a positive integer, got {values.get(key)!r}")
            out.append(int(v))
    return out[0], out[1], out[2]


def _csv_rows(text: str, p: Path) -> list[tuple[float, int, int]]:
    reader = csv.DictReader(io.StringIO(text))
    keys = [k.strip() for k in (reader.fieldnames or [])]
    if not keys:
        raise InputError(f"{p}: empty CSV (expected a header row: arrival_s,input_tokens,output_tokens)")
    reader.fieldnames = keys
    names = {f: _pick(keys, f, str(p)) for f in TRACE_COLUMNS}
    return [_row(rec, names, f"{p}:{i}") for i, rec in enumerate(reader, start=2)]


def _jsonl_rows(text: str, p: Path) -> list[tuple[float, int, int]]:
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{i}: invalid JSON: {e.msg}") from None
        except RecursionError:
            raise InputError(f"{p}:{i}: invalid JSON: nested too deeply") from None
        if not isinstance(rec, dict):
            raise InputError(f"{p}:{i}: each line must be a JSON object")
        names = {f: _pick(list(rec), f, f"{p}:{i}") for f in TRACE_COLUMNS}
        rows.append(_row(rec, names, f"{p}:{i}"))
    return rows
