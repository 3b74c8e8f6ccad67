"""Cost per token, written once. Two bases: output tokens (what `usd_per_million_output_tokens` fields hold) and
all tokens, input + output (`usd_per_million_tokens`), the basis of providers' blended prices."""
from __future__ import annotations

from ..units import SECONDS_PER_HOUR


def usd_per_million(usd: float, tokens: float) -> float:
    """$ per million tokens: `usd` spent on `tokens` tokens (or $/s on tokens/s)."""
    return usd / tokens * 1e6


def usd_per_million_at(usd_per_hour: float, tokens_per_s: float) -> float:
    """$ per million tokens served at `tokens_per_s` by hardware costing `usd_per_hour`."""
    return usd_per_million(usd_per_hour / SECONDS_PER_HOUR, tokens_per_s)


def all_tokens_basis(usd_per_million_output_tokens: float, isl: float, osl: float) -> float:
    """$ per million output tokens as $ per million tokens, input + output: each request of isl + osl tokens
    costs what its osl output tokens cost."""
    return usd_per_million_output_tokens * osl / (isl + osl)


def marginal_usd_per_million(usd_per_hour: float, decode_s_per_token: float, batch: float, prefill_stall_s: float,
                             isl: float) -> tuple[float, float]:
    """The replica's cost split by what uses its time (perf/batching.py): each output token takes 1/B of a decode
    cycle per token, each prompt one prefill stall s, so at full load

        $/M input tokens  = $/s · s / ISL · 1e6,     $/M output tokens = $/s · (cycle per token / B) · 1e6

    and a request costs ISL·input + OSL·output = its share of the replica's time. Returns (input, output)."""
    usd_per_s = usd_per_hour / SECONDS_PER_HOUR
    return (usd_per_million(usd_per_s * prefill_stall_s, isl),
            usd_per_million(usd_per_s * decode_s_per_token / batch, 1.0))
