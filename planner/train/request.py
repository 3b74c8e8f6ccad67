"""`TrainRequest`: what a training run must do (model, tokens, sequence, batch) and what it may use (GPU types,
a count, a deadline, a budget), built once at the edge from flags, a TOML request file (keys are the flag names
with underscores) or keyword arguments, validated there, then trusted."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..catalog import Catalog, load_catalog, load_model
from ..errors import InputError, did_you_mean
from ..files import read_toml
from ..numbers import is_real
from ..specs.accelerator import PRICE_TIERS, Accelerator
from ..specs.model import ModelSpec
from .params import TrainParams, shipped_params

# Defaults, each with its reason.
DEFAULT_SEQ_LEN_MAX = 8192  # Llama 3 and the rumoured GPT-4 pre-trained at 8k; longer contexts come later
DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 2**20  # ~4M tokens: GPT-3 175B used 3.2M (Brown et al. 2020, Table 2.1),
#   PaLM 540B 1M -> 4M (Chowdhery et al. 2022, section 5), Llama 3 405B 4M -> 16M (Dubey et al. 2024, 3.4.1)
DEFAULT_TIME_LIMIT_S = 30.0
# Input bounds: beyond them a value is a typo (or overflows the search's integer units).
MAX_TOKENS = 1e16  # ~700x Llama 3's 15.6T
MAX_SEQ_LEN = 2**21
MAX_GPUS = 1_000_000
MAX_DAYS = 36_500.0  # a century
MAX_BUDGET_USD = 1e12
MAX_USD_PER_GPU_HOUR = 100.0  # as the catalog's price range (planner/specs/accelerator.py)

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


@dataclass(frozen=True)
class TrainRequest:
    model: ModelSpec
    tokens: float  # D: tokens to train on
    seq_len: int  # s
    global_batch_tokens: int  # G = B sequences · s
    gpus: tuple[Accelerator, ...]
    params: TrainParams
    num_gpus: int | None = None  # exactly this many GPUs
    max_gpus: int | None = None  # at most this many
    deadline_days: float | None = None
    budget_usd: float | None = None
    time_limit_s: float = DEFAULT_TIME_LIMIT_S

    @property
    def global_batch_seqs(self) -> int:
        return self.global_batch_tokens // self.seq_len

    @property
    def objective(self) -> str:
        """'cost' (cheapest meeting the deadline / at the GPU count) or 'time' (fastest within the budget)."""
        return "time" if self.budget_usd is not None and self.deadline_days is None and self.num_gpus is None \
            else "cost"


def parse_count(value: Any, name: str, maximum: float) -> float:
    """A positive count typed as 13e12, 13T, 1.5e9, '4M' or an integer."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number (e.g. 13e12 or 13T), got {value!r}")
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        mult = 1.0
        if text and text[-1].lower() in _SUFFIX:
            mult, text = _SUFFIX[text[-1].lower()], text[:-1]
        try:
            value = float(text) * mult
        except ValueError:
            raise InputError(f"{name} must be a number (e.g. 13e12 or 13T), got {value!r}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= maximum:
        raise InputError(f"{name} must be a number > 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def _int(value: Any, name: str, maximum: float, minimum: int = 1) -> int:
    v = parse_count(value, name, maximum) if isinstance(value, str) else value
    if not is_real(v) or v != int(v) or not minimum <= v <= maximum:
        raise InputError(f"{name} must be an integer from {minimum} to {maximum:g}, got {value!r}")
    return int(v)


def _positive(value: Any, name: str, maximum: float) -> float:
    if not is_real(value) or not 0 < value <= maximum:
        raise InputError(f"{name} must be a number > 0 and <= {maximum:g}, got {value!r}")
    return float(value)


def make_request(model: ModelSpec | str | Path, *, tokens: Any = None, gpus: str | list[str] | None = None,
                 seq_len: Any = None, global_batch_tokens: Any = None, num_gpus: Any = None,
                 max_gpus: Any = None, deadline_days: Any = None, budget_usd: Any = None, price: Any = None,
                 price_tier: str | None = None, catalog: Catalog | str | Path | None = None,
                 goodput: Any = None, flops_efficiency: Any = None,
                 time_limit_s: Any = None) -> tuple[TrainRequest, Catalog]:
    """Validate a training request (flags, request-file keys and API arguments alike) and resolve its names."""
    if price_tier is not None and price_tier not in PRICE_TIERS:
        raise InputError(f"--price-tier: unknown price tier {price_tier!r}{did_you_mean(str(price_tier), PRICE_TIERS)} "
                         f"(tiers: {', '.join(PRICE_TIERS)})")
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog, price_tier=price_tier)
    m = model if isinstance(model, ModelSpec) else load_model(model)
    if tokens is None:
        raise InputError("missing --tokens (training tokens, e.g. 13e12)")
    d = parse_count(tokens, "--tokens", MAX_TOKENS)
    s = (min(m.max_context, DEFAULT_SEQ_LEN_MAX) if seq_len is None else _int(seq_len, "--seq-len", MAX_SEQ_LEN))
    g = (max(DEFAULT_GLOBAL_BATCH_TOKENS // s, 1) * s if global_batch_tokens is None
         else _int(global_batch_tokens, "--global-batch-tokens", MAX_TOKENS))
    if g % s:
        raise InputError(f"--global-batch-tokens ({g}) must be a multiple of --seq-len ({s}): whole sequences, "
                         f"e.g. {max(g // s, 1) * s}")
    if g > d:
        raise InputError(f"--global-batch-tokens ({g}) exceeds --tokens ({d:g}): the run would not finish one step")
    n = None if num_gpus is None else _int(num_gpus, "--num-gpus", MAX_GPUS)
    mx = None if max_gpus is None else _int(max_gpus, "--max-gpus", MAX_GPUS)
    if n is not None and mx is not None:
        raise InputError("give --num-gpus or --max-gpus, not both")
    dl = None if deadline_days is None else _positive(deadline_days, "--deadline-days", MAX_DAYS)
    bud = None if budget_usd is None else _positive(budget_usd, "--budget-usd", MAX_BUDGET_USD)
    if n is None and dl is None and bud is None:
        raise InputError("give --num-gpus, --deadline-days or --budget-usd (what the run may use or must meet)")
    accs = list(cat.gpus(gpus))
    missing = [a.id for a in accs if "bf16" not in a.flops_per_s]
    if missing:
        raise InputError(f"--gpus: {', '.join(missing)} has no bf16 peak in the catalog (training runs in bf16)")
    if price is not None:
        from dataclasses import replace

        from ..specs.accelerator import Price
        usd = _positive(price, "--price", MAX_USD_PER_GPU_HOUR)
        accs = [replace(a, price=Price(usd, a.price.tier, "--price", "")) for a in accs]
    params = shipped_params().with_overrides(goodput=goodput, flops_efficiency=flops_efficiency)
    tl = DEFAULT_TIME_LIMIT_S if time_limit_s is None else _positive(time_limit_s, "--time-limit-s", 3600.0)
    req = TrainRequest(model=m, tokens=d, seq_len=s, global_batch_tokens=g, gpus=tuple(accs), params=params,
                       num_gpus=n, max_gpus=mx, deadline_days=dl, budget_usd=bud, time_limit_s=tl)
    return req, cat


# Request-file keys: the flag names with underscores.
REQUEST_KEYS = ("model", "tokens", "seq_len", "global_batch_tokens", "gpus", "num_gpus", "max_gpus",
                "deadline_days", "budget_usd", "price", "price_tier", "catalog", "goodput", "flops_efficiency",
                "time_limit_s", "description")


def read_request(path: str | Path) -> dict[str, Any]:
    """A TOML training request as keyword arguments for `make_request` (paths inside it are relative to it)."""
    doc = read_toml(Path(path))
    return request_doc(doc, str(path), Path(path).parent)


def request_doc(doc: Mapping[str, Any], where: str, base: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(doc):
        if key not in REQUEST_KEYS:
            raise InputError(f"{where}: unknown key {key!r}{did_you_mean(key, REQUEST_KEYS)} "
                             f"(allowed: {', '.join(sorted(REQUEST_KEYS))})")
        v = doc[key]
        if key in ("model", "catalog", "price_tier", "description") and not (isinstance(v, str) and v.strip()):
            raise InputError(f"{where}: {key} must be a non-empty string, got {v!r}")
        if key == "gpus" and not (isinstance(v, str) and v.strip() or isinstance(v, list) and v
                                  and all(isinstance(x, str) and x.strip() for x in v)):
            raise InputError(f"{where}: gpus must be a name or a non-empty list of names, got {v!r}")
        if key in ("catalog", "model") and base is not None and not Path(v).is_absolute() \
                and (key == "catalog" or v.endswith(".json") or "/" in v):
            v = str(base / v)
        if key != "description":
            out[key] = v
    return out


def named(where: str, fn, *args, **kwargs):
    """Call `fn`, prefixing an input error with the request file it came from."""
    try:
        return fn(*args, **kwargs)
    except InputError as e:
        if str(e).startswith(where):
            raise
        # the flag names in the message become the file's keys (--seq-len -> seq_len)
        msg = re.sub(r"--([a-z][a-z-]*)", lambda mm: mm.group(1).replace("-", "_"), str(e))
        raise InputError(f"{where}: {msg}") from None
