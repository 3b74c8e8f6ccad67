"""Read the deployment to simulate from a plan file (`planner plan --json`) or an estimate file
(`planner estimate --json`), validated at the edge into a frozen `PlanSpec`.

Plan form:      model, gpu, parallelism {tp, pp, ep, replicas}, batch, precision {weights, kv},
                placement {layers_per_stage}, workload {isl, osl, rate_rps | output_tokens_per_s},
                slo {ttft_s, tpot_s}; schema_version 1 when present
Estimate form:  model, gpu, inputs {tp, pp, ep, batch, isl, osl, weights, kv, speculative}, placement
                (one replica, no arrival rate, no SLO)
Either may carry `speculative` {draft, gamma, alpha} (the estimate form inside `inputs`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..files import read_json_object
from ..numbers import is_real, is_whole

_MISSING = object()
# The plan JSON schema versions this reader understands (planner/plan.py SCHEMA_VERSION; a test keeps them equal).
PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Speculative:
    draft: str
    gamma: int
    alpha: float


@dataclass(frozen=True)
class PlanSpec:
    model: str
    gpu: str
    tp: int
    pp: int
    ep: int
    replicas: int
    batch: int
    weights: str
    kv: str
    isl: int
    osl: int
    layers_per_stage: tuple[int, ...] | None = None
    dp: int = 1
    rate_rps: float | None = None
    ttft_slo_s: float | None = None
    tpot_slo_s: float | None = None
    slo_percentile: float | None = None  # the percentile the plan's SLOs hold at (plan form: slo.percentile)
    speculative: Speculative | None = None
    base_dir: str | None = None  # folder of the plan file: a relative model path resolves against it

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "gpu": self.gpu, "tp": self.tp, "dp": self.dp, "pp": self.pp, "ep": self.ep,
                "replicas": self.replicas, "batch": self.batch, "weights": self.weights, "kv": self.kv,
                "isl": self.isl, "osl": self.osl,
                "layers_per_stage": None if self.layers_per_stage is None else list(self.layers_per_stage),
                "speculative": None if self.speculative is None else
                {"draft": self.speculative.draft, "gamma": self.speculative.gamma, "alpha": self.speculative.alpha}}


def read_plan_file(path: str | Path) -> dict[str, Any]:
    return read_json_object(Path(path), "a plan or an estimate")


def load_plan(path: str | Path) -> PlanSpec:
    return plan_from_dict(read_plan_file(path), where=str(path), base_dir=str(Path(path).resolve().parent))


def _get(doc: Mapping[str, Any], dotted: str, where: str, default: Any = _MISSING) -> Any:
    cur: Any = doc
    parts = dotted.split(".")
    for i, key in enumerate(parts):
        if not isinstance(cur, Mapping):
            raise InputError(f"{where}: field '{'.'.join(parts[:i])}' must be an object")
        if key not in cur or (cur[key] is None and default is not _MISSING):
            if default is _MISSING:
                raise InputError(f"{where}: missing field '{dotted}'")
            return default
        cur = cur[key]
    return cur


MAX_COUNT = 1 << 20  # replicas, batch, lengths: beyond it a plan field is a typo or a corruption


def _int(doc: Mapping[str, Any], dotted: str, where: str, default: Any = _MISSING) -> int:
    v = _get(doc, dotted, where, default)
    if not is_real(v) or v != int(v) or v < 1 or v > MAX_COUNT:
        raise InputError(f"{where}: field '{dotted}' must be a positive integer (at most {MAX_COUNT}), got {v!r}")
    return int(v)


def _str(doc: Mapping[str, Any], dotted: str, where: str) -> str:
    v = _get(doc, dotted, where)
    if not isinstance(v, str) or not v.strip():
        raise InputError(f"{where}: field '{dotted}' must be a non-empty string, got {v!r}")
    return v


def _positive(doc: Mapping[str, Any], dotted: str, where: str) -> float | None:
    v = _get(doc, dotted, where, None)
    if v is None:
        return None
    if not is_real(v) or v <= 0:
        raise InputError(f"{where}: field '{dotted}' must be a number > 0 or null, got {v!r}")
    return float(v)


def _layers(doc: Mapping[str, Any], where: str) -> tuple[int, ...] | None:
    v = _get(doc, "placement.layers_per_stage", where, None)
    if v is None:
        return None
    if not isinstance(v, list) or not v or any(not is_whole(x) or x < 1 for x in v):
        raise InputError(f"{where}: field 'placement.layers_per_stage' must be a list of positive integers, got {v!r}")
    return tuple(v)


def _speculative(v: Any, field: str, where: str) -> Speculative | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise InputError(f"{where}: field '{field}' must be an object or null")
    draft = _str(v, "draft", f"{where}: {field}")
    gamma = _int(v, "gamma", f"{where}: {field}")
    alpha = _get(v, "alpha", f"{where}: {field}")
    if not is_real(alpha) or not 0 <= alpha < 1:
        raise InputError(f"{where}: field '{field}.alpha' must be a number in [0, 1), got {alpha!r}")
    return Speculative(draft, gamma, float(alpha))


def plan_from_dict(doc: Mapping[str, Any], where: str = "plan", base_dir: str | None = None) -> PlanSpec:
    if not isinstance(doc, Mapping):
        raise InputError(f"{where}: expected a JSON object (a plan or an estimate), got {type(doc).__name__}")
    version = doc.get("schema_version", PLAN_SCHEMA_VERSION)
    if version != PLAN_SCHEMA_VERSION or isinstance(version, bool):
        raise InputError(f"{where}: plan schema_version {version!r} is not supported (this planner reads "
                         f"{PLAN_SCHEMA_VERSION})")
    if "pools" in doc:  # planner/disagg.py's plans replay in planner/sim/disagg.py
        raise InputError(f"{where}: a disaggregated plan (prefill and decode pools) replays through "
                         "planner.sim.disagg.simulate_disaggregated (`planner simulate` does so)")
    model, gpu = _str(doc, "model", where), _str(doc, "gpu", where)
    if "inputs" in doc and "parallelism" not in doc:  # `planner estimate --json`
        return PlanSpec(
            model=model, gpu=gpu, tp=_int(doc, "inputs.tp", where), pp=_int(doc, "inputs.pp", where),
            ep=_int(doc, "inputs.ep", where, 1), replicas=1, batch=_int(doc, "inputs.batch", where),
            weights=_str(doc, "inputs.weights", where), kv=_str(doc, "inputs.kv", where),
            isl=_int(doc, "inputs.isl", where), osl=_int(doc, "inputs.osl", where),
            layers_per_stage=_layers(doc, where), dp=_int(doc, "inputs.dp", where, 1),
            speculative=_speculative(_get(doc, "inputs.speculative", where, None), "inputs.speculative", where),
            base_dir=base_dir)
    tp, pp = _int(doc, "parallelism.tp", where), _int(doc, "parallelism.pp", where)
    ep, replicas = _int(doc, "parallelism.ep", where, 1), _int(doc, "parallelism.replicas", where)
    batch = _int(doc, "batch", where)
    weights, kv = _str(doc, "precision.weights", where), _str(doc, "precision.kv", where)
    isl, osl = _int(doc, "workload.isl", where), _int(doc, "workload.osl", where)
    rate = _positive(doc, "workload.rate_rps", where)
    demand = _positive(doc, "workload.output_tokens_per_s", where)
    if rate is None and demand is not None:  # demand given in output tokens/s: osl tokens per request
        rate = demand / osl
    return PlanSpec(
        model=model, gpu=gpu, tp=tp, pp=pp, ep=ep, replicas=replicas, batch=batch, weights=weights, kv=kv, isl=isl,
        osl=osl, layers_per_stage=_layers(doc, where), dp=_int(doc, "parallelism.dp", where, 1), rate_rps=rate,
        ttft_slo_s=_positive(doc, "slo.ttft_s", where),
        tpot_slo_s=_positive(doc, "slo.tpot_s", where), slo_percentile=_slo_percentile(doc, where),
        speculative=_speculative(_get(doc, "speculative", where, None), "speculative", where),
        base_dir=base_dir)


def _slo_percentile(doc: Mapping[str, Any], where: str) -> float | None:
    p = _positive(doc, "slo.percentile", where)
    if p is not None and not 50 <= p < 100:
        raise InputError(f"{where}: field 'slo.percentile' must be from 50 to below 100, got {p!r}")
    return p
