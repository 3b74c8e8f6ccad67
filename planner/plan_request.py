"""A plan request: the TOML request file (keys = the `planner plan` flag names with underscores), a dict of the
same keys, or keyword options, read, validated and merged here so that `planner.plan("examples/chat-70b.toml",
rate_rps=3)` takes what `planner plan examples/chat-70b.toml --rate-rps 3` takes.

`resolve(request, options)` returns a `PlanRequest`: the file's values, overridden by every option that is not
None, validated and grouped into small frozen dataclasses (the `Workload` and `SLO` of planner/specs, the
`SearchLimits` of the search, the catalog choice and the confirming simulation's percentile and seed), which
`api.search_request` turns into the search's `Request`. Errors name the file and key (a file value) or the flag."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import InputError, did_you_mean
from .numbers import is_real, is_whole
from .specs.layout import ReplicaLayout
from .specs.workload import MAX_TOKENS, SLO, Workload, _check_positive, check_range
from .text import check_text

if TYPE_CHECKING:
    from .perf.estimate import SpecDecode

# Bounds on counts: far beyond any real deployment, well inside the integer ranges the search uses.
MAX_DEGREE = 100_000  # tp, pp, ep
MAX_GPUS = 1_000_000  # max_gpus, max_gpus_per_type

# Request-file keys (the flag names with underscores) and what each must hold.
REQUEST_KEYS = {
    "model": "text", "gpus": "names", "isl": "count", "osl": "count", "ttft_ms": "number", "tpot_ms": "number",
    "min_tokens_per_s_user": "number", "rate_rps": "number", "output_tokens_per_s": "number", "weights": "names",
    "kv": "names", "max_gpus": "count", "max_gpus_per_type": "limits", "time_limit_s": "number", "catalog": "text",
    "price_tier": "text", "tp": "degrees", "pp": "degrees", "ep": "degrees", "batch": "degrees",
    "description": "text", "ttft_p99_ms": "number",
    "tpot_p99_ms": "number", "max_model_len": "count", "slo_percentile": "percentile", "seed": "seed", "engine": "text",
    "spec_draft": "names", "spec_alpha": "fraction", "disagg": "text", "chat": "bool", "two_batch_overlap": "text",
    "pool_space": "text",
}
_COUNT_MAX = {**MAX_TOKENS, "max_gpus": MAX_GPUS, "max_model_len": MAX_TOKENS["isl"] + MAX_TOKENS["osl"]}
_NUMBER_MAX = 1e12  # as specs.workload: beyond it a rate or a latency is a typo
# An option overrides the request file's value of the same quantity given in its other unit.
_SAME_QUANTITY = {"tpot_ms": "min_tokens_per_s_user", "min_tokens_per_s_user": "tpot_ms",
                  "rate_rps": "output_tokens_per_s", "output_tokens_per_s": "rate_rps"}


def check_value(path: str, key: str, v: Any) -> None:
    """Type and range of one request-file value, so that the error names the file and the key."""
    kind, where = REQUEST_KEYS[key], f"{path}: {key}"

    if kind == "text" and not (isinstance(v, str) and v.strip()):
        raise InputError(f"{where} must be a non-empty string, got {v!r}")
    if kind == "names":
        items = v.split(",") if isinstance(v, str) else v
        if not (isinstance(items, list) and all(isinstance(x, str) for x in items) and any(x.strip() for x in items)):
            raise InputError(f"{where} must be a name or a non-empty list of names, got {v!r}")
    for text in ([v] if kind == "text" else items if kind == "names" else []):
        check_text(text, where)  # names and descriptions land in scripts and terminals (planner/text.py)
    if kind == "count" and not (is_whole(v) and 1 <= v <= _COUNT_MAX[key]):
        raise InputError(f"{where} must be an integer from 1 to {_COUNT_MAX[key]}, got {v!r}")
    if kind == "number" and not (is_real(v) and 0 < v <= _NUMBER_MAX):
        raise InputError(f"{where} must be a number > 0 (and <= {_NUMBER_MAX:g}), got {v!r}")
    if kind == "percentile" and not (is_real(v) and 50 <= v < 100):
        raise InputError(f"{where} must be a number from 50 to below 100 (99 = p99, 50 = medians), got {v!r}")
    if kind == "fraction" and not (is_real(v) and 0 <= v < 1):
        raise InputError(f"{where} must be a number from 0 to below 1, got {v!r}")
    if kind == "bool" and not isinstance(v, bool):
        raise InputError(f"{where} must be true or false, got {v!r}")
    if kind == "seed" and not (is_whole(v) and 0 <= v < 2**63):
        raise InputError(f"{where} must be a non-negative integer, got {v!r}")
    if kind == "degrees" and not (isinstance(v, list) and v and all(is_whole(x) and 1 <= x <= MAX_DEGREE for x in v)):
        raise InputError(f"{where} must be a non-empty list of integers from 1 to {MAX_DEGREE}, got {v!r}")
    if kind == "limits" and not (isinstance(v, dict) and all(is_whole(x) and 0 <= x <= MAX_GPUS for x in v.values())):
        raise InputError(f"{where} must be a table of GPU = count (0 to {MAX_GPUS}), e.g. {{ h100-sxm = 64 }}, "
                         f"got {v!r}")
    from .specs.accelerator import PRICE_TIERS
    from .units import KV_PRECISIONS, WEIGHT_PRECISIONS

    choices = {"weights": WEIGHT_PRECISIONS, "kv": KV_PRECISIONS, "price_tier": PRICE_TIERS}.get(key)
    for name in ([] if choices is None else v.split(",") if isinstance(v, str) else v):
        if name.strip() and name.strip() not in choices:
            raise InputError(f"{where}: unknown {'price tier' if key == 'price_tier' else 'precision'} "
                             f"{name.strip()!r}{did_you_mean(name.strip(), choices)} (choose from {', '.join(choices)})")


class RequestDoc(dict):
    """A request file's keys, remembering the file for error messages."""

    path: str | None = None


def read(doc: Mapping[str, Any], path: str | None = None, base_dir: Path | None = None) -> RequestDoc:
    """Validate a request document (a request file's content, or a dict of the same keys); relative `catalog` and
    model paths are resolved against `base_dir`. Errors name `path` (default: "request")."""
    where = path if path is not None else "request"
    out = RequestDoc(doc)
    out.path = path
    for key in sorted(out):
        if key not in REQUEST_KEYS:
            raise InputError(f"{where}: unknown key {key!r}{did_you_mean(key, REQUEST_KEYS)} "
                             f"(allowed: {', '.join(sorted(REQUEST_KEYS))})")
        check_value(where, key, out[key])
    if base_dir is not None:
        if "catalog" in out and not Path(out["catalog"]).is_absolute():
            out["catalog"] = str(base_dir / out["catalog"])
        m = out.get("model")
        if isinstance(m, str) and (m.endswith(".json") or "/" in m) and not Path(m).is_absolute():
            out["model"] = str(base_dir / m)
        drafts = out.get("spec_draft")  # draft config paths, like the model's, are relative to the file
        if drafts is not None:
            items = [x.strip() for x in drafts.split(",")] if isinstance(drafts, str) else list(drafts)
            out["spec_draft"] = [str(base_dir / x) if (x.endswith(".json") or "/" in x) and not Path(x).is_absolute()
                                 else x for x in items if x]
    out.pop("description", None)
    return out


def read_file(path: str | Path) -> RequestDoc:
    """Read and validate a TOML request file."""
    from .catalog import read_toml

    return read(read_toml(Path(path)), str(path), Path(path).parent)


def _check_file_names(path: str, file_doc: Mapping[str, Any], args: dict[str, Any],
                      options: Mapping[str, Any]) -> None:
    """Resolve the names the request file gives (model, GPUs) now, so that an unknown one names the file and key."""
    from .catalog import load_catalog, load_model

    keys = [k for k in ("model", "gpus", "max_gpus_per_type") if k in file_doc and options.get(k) in (None, ())]
    if not keys:
        return
    try:
        cat = load_catalog(args.get("catalog"), price_tier=args.get("price_tier"))
    except InputError:
        return  # the search reports it, naming the catalog file
    for key in keys:
        try:
            if key == "model":
                load_model(args["model"])
            elif key == "gpus":
                cat.gpus(args["gpus"])
            else:
                for name in args["max_gpus_per_type"]:
                    cat.gpu(name)
        except InputError as e:
            raise InputError(f"{path}: {key}: {e}") from None


def _gpu_limits(items: Any) -> dict[str, int]:
    """`max_gpus_per_type` given as TYPE=N strings (the repeatable flag)."""
    parsed = {}
    for item in items:
        name, sep, n = str(item).partition("=")
        if not sep:
            raise InputError(f"--max-gpus-per-type expects TYPE=N, got {item!r}")
        try:
            parsed[name] = int(n)
        except ValueError:
            raise InputError(f"--max-gpus-per-type {name}: {n!r} is not an integer") from None
        if not 0 <= parsed[name] <= MAX_GPUS:
            raise InputError(f"--max-gpus-per-type {name}: must be from 0 to {MAX_GPUS}, got {n}")
    return parsed


def merge(file_doc: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The request file's values overridden by every option that is not None (or empty), checked for the keys
    every plan needs (model, isl, osl)."""
    out = dict(file_doc)
    for k, v in options.items():
        if v is not None and v != ():
            out[k] = v
            if k in _SAME_QUANTITY and options.get(_SAME_QUANTITY[k]) is None:
                out.pop(_SAME_QUANTITY[k], None)
    for key in ("gpus", "weights", "kv", "spec_draft"):
        if isinstance(options.get(key), str) and not any(x.strip() for x in options[key].split(",")):
            raise InputError(f"--{key.replace('_', '-')} is empty")
    per = out.get("max_gpus_per_type")
    if isinstance(per, (tuple, list)):
        out["max_gpus_per_type"] = _gpu_limits(per)
    path = getattr(file_doc, "path", None)
    for req_key in ("model", "isl", "osl"):
        if out.get(req_key) is None:
            where = f"flag, or key '{req_key}' in {path}" if path else f"flag or request-file key '{req_key}'"
            raise InputError(f"missing --{req_key.replace('_', '-')} ({where})")
    if path:
        _check_file_names(path, file_doc, out, options)
    return out


def is_request(x: Any) -> bool:
    """Is `x` a request (a TOML request file or a dict of request keys) rather than a model?"""
    return isinstance(x, Mapping) or (isinstance(x, (str, Path)) and str(x).endswith(".toml"))


@dataclass(frozen=True)
class SearchLimits:
    """What the plan search may choose from, and for how long. None: the search's default."""

    gpus: str | tuple[str, ...] | None = None  # GPU ids or spellings ("h100,a100" or a tuple); None: whole catalog
    weights: str | tuple[str, ...] | None = None  # precisions; None: the checkpoint's own, else search.DEFAULT_WEIGHTS
    kv: str | tuple[str, ...] | None = None  # KV-cache precisions; None: search.DEFAULT_KV
    tp: tuple[int, ...] | None = None  # TP degrees; None: every divisor of the heads within the scale-up domain
    pp: tuple[int, ...] | None = None  # PP degrees; None: 1 to the layers
    ep: tuple[int, ...] | None = None  # EP degrees; None: those the experts allow
    batch: tuple[int, ...] | None = None  # replica batches; None: any memory allows
    max_gpus: int | None = None  # GPUs in total
    max_gpus_per_type: Mapping[str, int] = field(default_factory=dict)  # GPU name -> most GPUs of that type
    time_limit_s: float = 30.0  # solver wall-clock limit


@dataclass(frozen=True)
class PlanRequest:
    """One plan (or frontier) request, validated: what `planner plan` flags and request files say, grouped."""

    model: Any  # preset id, config.json, model folder or ModelSpec (loaded by api.search_request)
    workload: Workload  # token lengths, demand, engine maximum length
    slo: SLO  # latency targets (the p99 targets already folded in)
    limits: SearchLimits = SearchLimits()
    catalog: Any = None  # a Catalog, a catalog TOML path, or None (the shipped catalog)
    price_tier: str | None = None
    engine: str | None = None  # perf profile (PerfParams.with_engine); None: vLLM
    slo_percentile: float | None = None  # the SLOs hold at this percentile (None: search.percentile's default, 99)
    seed: int | None = None  # seed of the confirming simulation (None: search.percentile.CONFIRM_SEED)
    spec_draft: str | tuple[Any, ...] | None = None  # draft models the plan may speculate with (planner/speculative.py)
    spec_alpha: float | None = None  # their per-token acceptance rate (None: speculative.DEFAULT_ALPHA)
    disagg: str | None = None  # prefill/decode disaggregation: auto | on | off (None: auto; planner/disagg.py)
    chat: bool = False  # serve the model's instruct/chat checkpoint (catalog/models/chat.toml) in the export
    two_batch_overlap: str | None = None  # auto | on | off (None: auto; api.plan, perf/step.py two_batch_overlap_step)
    pool_space: str | None = None  # the disaggregated pools' space: grid | exact (None: exact; search.space.pools_space)


# Keys a frontier ignores: it sweeps the speed target itself and is steady-state (no demand to simulate against).
FRONTIER_IGNORES = ("tpot_ms", "min_tokens_per_s_user", "tpot_p99_ms", "slo_percentile", "seed", "disagg",
                    "pool_space")
DISAGG_MODES = ("auto", "on", "off")
TBO_MODES = ("auto", "on", "off")


def _tighter(limit: float | None, p99: float | None) -> float | None:
    return p99 if p99 is not None and (limit is None or limit > p99) else limit


def build(args: Mapping[str, Any], frontier: bool = False) -> PlanRequest:
    """The `PlanRequest` of merged request keys (`merge`). `ttft_p99_ms` and `tpot_p99_ms` (older names) tighten
    `ttft_ms` / `tpot_ms`; a frontier drops the keys in FRONTIER_IGNORES (a p99 TTFT then bounds its TTFT)."""
    from .search.percentile import check_percentile
    from .search.space import POOL_SPACES

    a = {k: v for k, v in args.items() if not (frontier and k in FRONTIER_IGNORES)}
    pct = a.get("slo_percentile")
    percentile = None if pct is None else check_percentile(pct)
    ttft_p99_ms, tpot_p99_ms = a.get("ttft_p99_ms"), a.get("tpot_p99_ms")
    for name, v in (("--ttft-p99-ms", ttft_p99_ms), ("--tpot-p99-ms", tpot_p99_ms)):
        _check_positive(name, v)
        check_range(name, v)
    ttft_ms, tpot_ms, min_speed = _tighter(a.get("ttft_ms"), ttft_p99_ms), a.get("tpot_ms"), a.get("min_tokens_per_s_user")
    if tpot_p99_ms is not None:
        flat = tpot_ms or (1000.0 / min_speed if min_speed else None)
        if flat is None or flat > tpot_p99_ms:
            tpot_ms, min_speed = tpot_p99_ms, None
    seed = a.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    if a.get("disagg") is not None and a["disagg"] not in DISAGG_MODES:
        raise InputError(f"--disagg must be one of {', '.join(DISAGG_MODES)}, got {a['disagg']!r}")
    if a.get("two_batch_overlap") is not None and a["two_batch_overlap"] not in TBO_MODES:
        raise InputError(f"--two-batch-overlap must be one of {', '.join(TBO_MODES)}, got {a['two_batch_overlap']!r}")
    if a.get("pool_space") is not None and a["pool_space"] not in POOL_SPACES:
        raise InputError(f"--pool-space must be one of {', '.join(POOL_SPACES)}, got {a['pool_space']!r}")
    tup = lambda v: v if v is None or isinstance(v, str) else tuple(v)  # noqa: E731
    limits = SearchLimits(
        gpus=tup(a.get("gpus")), weights=tup(a.get("weights")), kv=tup(a.get("kv")), tp=tup(a.get("tp")),
        pp=tup(a.get("pp")), ep=tup(a.get("ep")), batch=tup(a.get("batch")), max_gpus=a.get("max_gpus"), max_gpus_per_type=dict(a.get("max_gpus_per_type") or {}),
        **({} if a.get("time_limit_s") is None else {"time_limit_s": a["time_limit_s"]}))
    return PlanRequest(
        model=a["model"],
        workload=Workload(isl=a["isl"], osl=a["osl"], rate_rps=a.get("rate_rps"),
                          output_tokens_per_s=a.get("output_tokens_per_s"), max_model_len=a.get("max_model_len")),
        slo=SLO.from_flags(ttft_ms=ttft_ms, tpot_ms=tpot_ms, min_tokens_per_s_user=min_speed),
        limits=limits, catalog=a.get("catalog"), price_tier=a.get("price_tier"), engine=a.get("engine"),
        slo_percentile=percentile, seed=seed, spec_draft=tup(a.get("spec_draft")), spec_alpha=a.get("spec_alpha"),
        disagg=a.get("disagg"), chat=bool(a.get("chat")), two_batch_overlap=a.get("two_batch_overlap"),
        pool_space=a.get("pool_space"))


def resolve(request: Any, options: Mapping[str, Any], frontier: bool = False) -> PlanRequest:
    """The `PlanRequest`: `request` is a TOML request file, a dict of request keys, the model (preset id,
    config.json, folder or ModelSpec), None, or a `PlanRequest` (then `options` must be empty); `options`
    override it."""
    if isinstance(request, PlanRequest):
        if options:
            raise InputError(f"give options inside the PlanRequest, not as keywords ({', '.join(sorted(options))})")
        return request
    if request is None:
        doc: Mapping[str, Any] = {}
    elif isinstance(request, Mapping):
        doc = read(request)
    elif is_request(request):
        doc = read_file(request)
    else:
        doc, options = {}, {**options, "model": request}
    return build(merge(doc, options), frontier)


# ---- one fixed configuration (`planner estimate`) ------------------------------------------------------------------
@dataclass(frozen=True)
class EstimateRequest:
    """One fixed configuration to evaluate (`planner estimate`), built by `estimate_request`: the model, the GPU and
    the layout of one replica, the workload, an optional draft model, and the catalog choice."""

    model: Any  # a ModelSpec (estimate_request loads a preset id, config.json or folder)
    gpu: str  # accelerator id or common spelling, resolved by the catalog
    layout: ReplicaLayout  # layers_per_stage () = balanced over the stages
    workload: Workload  # isl, osl and the engine's maximum sequence length (a demand is not used)
    spec: SpecDecode | None = None  # speculative decoding with a draft model (its ModelSpec loaded)
    price: float | None = None  # $/GPU-hour instead of the catalog's
    redundant_experts: int = 0  # extra expert copies over the EP ranks (EPLB)
    catalog: Any = None  # a Catalog, a catalog TOML path, or None (the shipped catalog)
    price_tier: str | None = None
    engine: str | None = None  # perf profile (PerfParams.with_engine); None: vLLM
    two_batch_overlap: str | None = None  # "on" | "off" (None: the catalog's [perf] two_batch_overlap, off)


# The per-field keywords `estimate_request` also takes (the `planner estimate` flags), grouped into its dataclasses.
_LAYOUT_KEYS = ("tp", "pp", "ep", "dp", "batch", "weights", "kv", "layers_per_stage")
_WORKLOAD_KEYS = ("isl", "osl", "max_model_len")
_SPEC_KEYS = ("spec_draft", "spec_gamma", "spec_alpha")


def estimate_request(model: Any, gpu: str | None = None, layout: ReplicaLayout | None = None,
                     workload: Workload | None = None, **options: Any) -> EstimateRequest:
    """The `EstimateRequest` of `model` on `gpu` with `layout` and `workload`; `options` are EstimateRequest's
    other fields (spec, price, redundant_experts, catalog, price_tier, engine) or, instead of the layout, the
    workload or the spec, their fields as `planner estimate`'s flags name them (tp, pp, ep, dp, batch, weights,
    kv, layers_per_stage; isl, osl, max_model_len; spec_draft, spec_gamma, spec_alpha). A layout's `weights`
    None is the checkpoint's own quantization, else bf16."""
    from .catalog import load_model
    from .perf.estimate import SpecDecode
    from .specs.model import ModelSpec

    if gpu is None:
        raise InputError("missing --gpu")
    load = lambda m: m if isinstance(m, ModelSpec) else load_model(m)  # noqa: E731
    groups = {"layout": (layout, _LAYOUT_KEYS), "workload": (workload, _WORKLOAD_KEYS),
              "spec": (options.get("spec"), _SPEC_KEYS)}
    for name, (given, keys) in groups.items():
        both = sorted(k for k in keys if k in options)
        if given is not None and both:
            raise InputError(f"give the {name} or its fields ({', '.join(both)}), not both")
    unknown = sorted(set(options) - set(_LAYOUT_KEYS + _WORKLOAD_KEYS + _SPEC_KEYS)
                     - {"spec", "price", "redundant_experts", "catalog", "price_tier", "engine", "two_batch_overlap"})
    if unknown:
        raise InputError(f"unknown estimate option(s): {', '.join(unknown)}")
    m = load(model)
    if layout is None:
        for key in ("batch",):
            if key not in options:
                raise InputError(f"missing --{key}")
        lay = options.get("layers_per_stage")
        layout = ReplicaLayout(tp=options.get("tp", 1), pp=options.get("pp", 1), ep=options.get("ep", 1),
                               batch=options["batch"], weights=options.get("weights"), kv=options.get("kv", "bf16"),
                               layers_per_stage=() if lay is None else tuple(lay), dp=options.get("dp", 1))
    if layout.weights is None:
        layout = replace(layout, weights=m.native_weights or "bf16")
    if workload is None:
        for key in ("isl", "osl"):
            if key not in options:
                raise InputError(f"missing --{key}")
        workload = Workload(isl=options["isl"], osl=options["osl"], max_model_len=options.get("max_model_len"))
    spec = options.get("spec")
    if spec is None and options.get("spec_draft") is not None:
        spec = SpecDecode(options["spec_draft"], options.get("spec_gamma", 4), options.get("spec_alpha", 0.7))
    if spec is not None:
        spec = replace(spec, draft=load(spec.draft))
    return EstimateRequest(model=m, gpu=gpu, layout=layout, workload=workload, spec=spec,
                           price=options.get("price"), redundant_experts=options.get("redundant_experts", 0),
                           catalog=options.get("catalog"), price_tier=options.get("price_tier"),
                           engine=options.get("engine"), two_batch_overlap=_tbo_on_off(options.get("two_batch_overlap")))


def _tbo_on_off(value: Any) -> str | None:
    """An estimate's two-batch overlap: "on", "off" or None (the catalog's setting)."""
    if value is not None and value not in ("on", "off"):
        raise InputError(f"--two-batch-overlap must be on or off for one configuration, got {value!r}")
    return value
