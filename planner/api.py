"""The public Python API. Every CLI command is a thin wrapper over one of these functions."""
from __future__ import annotations

from pathlib import Path

from .catalog import Catalog, load_catalog, load_model
from .perf.estimate import Config, Estimate, SpecDecode
from .perf.estimate import estimate as _estimate
from .specs.model import ModelSpec
from .specs.workload import Workload


def _catalog(catalog: Catalog | str | Path | None, price_tier: str | None = None) -> Catalog:
    if isinstance(catalog, Catalog):
        return catalog
    return load_catalog(catalog, price_tier=price_tier)


def _model(model: ModelSpec | str | Path) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def estimate(model: ModelSpec | str, gpu: str, *, batch: int, isl: int, osl: int, tp: int = 1, pp: int = 1,
             ep: int = 1, weights: str = "bf16", kv: str = "bf16", layers_per_stage: tuple[int, ...] | None = None,
             price: float | None = None, spec_draft: ModelSpec | str | None = None, spec_gamma: int = 4,
             spec_alpha: float = 0.7, catalog: Catalog | str | Path | None = None,
             price_tier: str | None = None) -> Estimate:
    """Latency, throughput, memory and cost of one fixed configuration."""
    cat = _catalog(catalog, price_tier)
    m = _model(model)
    spec = None if spec_draft is None else SpecDecode(_model(spec_draft), spec_gamma, spec_alpha)
    cfg = Config(gpu=cat.gpu(gpu), tp=tp, pp=pp, ep=ep, batch=batch, weights=weights, kv=kv,
                 layers_per_stage=layers_per_stage, spec=spec, usd_per_hour_per_gpu=price)
    return _estimate(m, cfg, Workload(isl=isl, osl=osl), cat.perf)
