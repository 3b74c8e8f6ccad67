"""`PerfParams`: every named assumption of the performance model, with defaults from catalog/perf.toml."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from ..errors import InputError
from ..numbers import is_real


@dataclass(frozen=True)
class PerfParams:
    hbm_efficiency: float = 0.80
    flops_efficiency: float = 0.60
    step_overhead_s: float = 0.0025
    link_efficiency: float = 0.80
    allreduce_latency_s: float = 8e-6
    p2p_latency_s: float = 15e-6
    memory_reserve_fraction: float = 0.10
    max_batched_tokens: int = 8192
    head_stage_overhead_s: float = 0.0
    max_batch: int = 2048
    prefill_first: bool = False

    def updated(self, values: Mapping[str, Any], where: str) -> "PerfParams":
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InputError(f"{where}: unknown perf parameter {key!r} (known: {', '.join(sorted(known))})")
            if known[key].type in ("bool", bool):
                if not isinstance(value, bool):
                    raise InputError(f"{where}: perf parameter {key!r} must be true or false, got {value!r}")
                changes[key] = value
                continue
            if not is_real(value) or value < 0:
                raise InputError(f"{where}: perf parameter {key!r} must be a number >= 0, got {value!r}")
            if key.endswith("_efficiency") and not 0 < value <= 1:
                raise InputError(f"{where}: perf parameter {key!r} must be in (0, 1], got {value!r}")
            if key == "memory_reserve_fraction" and value >= 1:
                raise InputError(f"{where}: perf parameter {key!r} must be < 1, got {value!r}")
            if known[key].type in ("int", int):
                if value != int(value) or value < 1:
                    raise InputError(f"{where}: perf parameter {key!r} must be a positive integer, got {value!r}")
                value = int(value)
            changes[key] = value
        return replace(self, **changes)
