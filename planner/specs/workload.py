"""`Workload` (token lengths, demand) and `SLO` (latency targets): validated at the edge, trusted inside."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..numbers import is_real, is_whole

DEFAULT_MIN_TOKENS_PER_S_USER = 100.0 / 3.0  # 33.3 tok/s: a fast reader; 8 tok/s is a slow one
# Longest prompt and answer (tokens) the planner accepts. Prompts: 10M, the longest context a released model
# claims. Answers: 2^17, the largest output limits served today (~128k); the CP-SAT model's TPOT constraint
# multiplies OSL by nanosecond times, and 2^17 keeps it inside int64 for every row the bounds admit.
MAX_TOKENS = {"isl": 10_000_000, "osl": 131_072}


# Human-scale ranges of the SLO and demand inputs (flag name -> (low, high, unit)): outside them a value is a unit
# slip or a typo (a TPOT of 1e-300 ms, a TTFT of a year), and printing it would print a 300-digit number.
HUMAN_RANGES: dict[str, tuple[float, float, str]] = {
    "--ttft-ms": (1e-3, 3.6e6, "ms (1 µs to 1 hour)"), "--tpot-ms": (1e-3, 3.6e6, "ms (1 µs to 1 hour)"),
    "--ttft-p99-ms": (1e-3, 3.6e6, "ms (1 µs to 1 hour)"), "--tpot-p99-ms": (1e-3, 3.6e6, "ms (1 µs to 1 hour)"),
    "--min-tokens-per-s-user": (1e-3, 1e6, "tokens/s"), "--rate-rps": (1e-6, 1e9, "requests/s"),
    "--output-tokens-per-s": (1e-6, 1e12, "tokens/s"),
}


def check_range(name: str, value: float | None) -> None:
    """`value` (a flag or request-file value, in the flag's unit) within HUMAN_RANGES[name], else one line."""
    if value is None or name not in HUMAN_RANGES:
        return
    lo, hi, unit = HUMAN_RANGES[name]
    if is_real(value) and not lo <= value <= hi:
        raise InputError(f"{name} must be from {lo:g} to {hi:g} {unit}, got {value:.3g}")


def _check_positive(name: str, value: float | None, allow_none: bool = True, limit: float = 1e12) -> None:
    if value is None:
        if allow_none:
            return
        raise InputError(f"{name} is required")
    if not is_real(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    if value > limit:
        raise InputError(f"{name} is implausibly large ({value!r})")


@dataclass(frozen=True)
class Workload:
    """Mean input (prompt) and output lengths in tokens, and optional demand (requests or output tokens per s)."""

    isl: int
    osl: int
    rate_rps: float | None = None
    output_tokens_per_s: float | None = None
    # The engine's maximum sequence length (prompt + output) the deployment must accept; None: the model's context.
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("isl", "osl"):
            v = getattr(self, name)
            if not is_whole(v):
                raise InputError(f"--{name} must be an integer, got {v!r}")
            _check_positive(f"--{name}", v, allow_none=False, limit=MAX_TOKENS[name])
        if self.max_model_len is not None:
            if isinstance(self.max_model_len, bool) or not isinstance(self.max_model_len, int):
                raise InputError(f"--max-model-len must be an integer, got {self.max_model_len!r}")
            _check_positive("--max-model-len", self.max_model_len, limit=MAX_TOKENS["isl"] + MAX_TOKENS["osl"])
        _check_positive("--rate-rps", self.rate_rps)
        _check_positive("--output-tokens-per-s", self.output_tokens_per_s)
        check_range("--rate-rps", self.rate_rps)
        check_range("--output-tokens-per-s", self.output_tokens_per_s)
        if self.rate_rps is not None and self.output_tokens_per_s is not None:
            raise InputError("give either --rate-rps or --output-tokens-per-s, not both")

    @property
    def context_tokens(self) -> int:
        return self.isl + self.osl

    def engine_max_len(self, model: Any) -> int:
        """The longest sequence the engine must accept: `max_model_len` if set, else the model's context
        (max_position_embeddings with RoPE scaling). Engines reject prompts beyond it and refuse to start with it
        above the model's context, so both are input errors here."""
        context = model.max_context
        if self.max_model_len is not None and self.max_model_len > context:
            raise InputError(f"--max-model-len {self.max_model_len} exceeds {model.name}'s context of {context} "
                             "tokens (max_position_embeddings with RoPE scaling)")
        limit = self.max_model_len or context
        if self.isl + self.osl > limit:
            what = (f"--max-model-len {limit}" if self.max_model_len is not None
                    else f"{model.name}'s context of {context} tokens")
            raise InputError(f"ISL + OSL = {self.isl} + {self.osl} = {self.isl + self.osl} tokens exceeds {what}")
        return limit

    @property
    def demand_output_tokens_per_s(self) -> float | None:
        if self.output_tokens_per_s is not None:
            return self.output_tokens_per_s
        if self.rate_rps is not None:
            return self.rate_rps * self.osl
        return None


@dataclass(frozen=True)
class SLO:
    """Latency targets. `tpot_s` is the per-user time per output token (1 / tokens-per-second-per-user)."""

    ttft_s: float | None = None
    tpot_s: float | None = 1.0 / DEFAULT_MIN_TOKENS_PER_S_USER

    def __post_init__(self) -> None:
        _check_positive("--ttft-ms", self.ttft_s)
        _check_positive("--tpot-ms", self.tpot_s)

    @property
    def min_tokens_per_s_user(self) -> float | None:
        return None if self.tpot_s is None else 1.0 / self.tpot_s

    @classmethod
    def from_flags(cls, ttft_ms: float | None = None, tpot_ms: float | None = None,
                   min_tokens_per_s_user: float | None = None) -> "SLO":
        if tpot_ms is not None and min_tokens_per_s_user is not None:
            if not math.isclose(1000.0 / tpot_ms, min_tokens_per_s_user, rel_tol=1e-6):
                raise InputError(
                    f"contradictory SLOs: --tpot-ms {tpot_ms:g} means {1000.0 / tpot_ms:.4g} tok/s/user, "
                    f"but --min-tokens-per-s-user is {min_tokens_per_s_user:g}")
        _check_positive("--ttft-ms", ttft_ms)
        _check_positive("--tpot-ms", tpot_ms)
        _check_positive("--min-tokens-per-s-user", min_tokens_per_s_user)
        for name, v in (("--ttft-ms", ttft_ms), ("--tpot-ms", tpot_ms), ("--min-tokens-per-s-user",
                                                                        min_tokens_per_s_user)):
            check_range(name, v)
        if tpot_ms is not None:
            tpot = tpot_ms / 1000.0
        elif min_tokens_per_s_user is not None:
            tpot = 1.0 / min_tokens_per_s_user
        else:
            tpot = 1.0 / DEFAULT_MIN_TOKENS_PER_S_USER
        return cls(ttft_s=None if ttft_ms is None else ttft_ms / 1000.0, tpot_s=tpot)
