"""`TrainParams`: the training model's named assumptions (catalog/train.toml): goodput, memory reserve, and the
FLOP efficiency per accelerator family with the published runs it was fitted on."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping

from ..errors import InputError
from ..files import read_toml
from ..numbers import is_real


@dataclass(frozen=True)
class Family:
    id: str
    accelerators: tuple[str, ...]
    flops_efficiency: float
    fit: tuple[str, ...] = ()  # published runs (catalog/train_runs.toml) the efficiency was fitted on
    assumed_from: str = ""  # a family without a run of its own borrows a fitted family's efficiency


@dataclass(frozen=True)
class TrainParams:
    goodput: float = 0.90
    memory_reserve_fraction: float = 0.10
    default_family: str = "nvidia-hopper"
    families: tuple[Family, ...] = field(default=())
    flops_efficiency_override: float | None = None  # a user's own efficiency, for every accelerator

    def family(self, gpu_id: str) -> Family:
        by_id = {f.id: f for f in self.families}
        for f in self.families:
            if gpu_id in f.accelerators:
                return f
        return by_id[self.default_family]

    def flops_efficiency(self, gpu_id: str) -> float:
        """Fraction of dense bf16 peak reached by training kernels on this accelerator (its family's fit)."""
        if self.flops_efficiency_override is not None:
            return self.flops_efficiency_override
        return self.family(gpu_id).flops_efficiency

    def with_overrides(self, goodput: float | None = None, flops_efficiency: float | None = None) -> "TrainParams":
        for name, v in (("--goodput", goodput), ("--flops-efficiency", flops_efficiency)):
            if v is not None and (not is_real(v) or not 0 < v <= 1):
                raise InputError(f"{name} must be a number in (0, 1], got {v!r}")
        return replace(self, goodput=self.goodput if goodput is None else float(goodput),
                       flops_efficiency_override=flops_efficiency)


def _fraction(table: Mapping[str, Any], key: str, where: str) -> float:
    v = table.get(key)
    if not is_real(v) or not 0 < v <= 1:
        raise InputError(f"{where}: {key} must be a number in (0, 1], got {v!r}")
    return float(v)


def params_from_doc(doc: Mapping[str, Any], where: str) -> TrainParams:
    t = doc.get("train", {})
    raw = doc.get("family", [])
    if not isinstance(t, Mapping) or not isinstance(raw, list):
        raise InputError(f"{where}: expected a [train] table and [[family]] tables")
    fitted: dict[str, Family] = {}
    for e in raw:
        if "flops_efficiency" in e:
            f = Family(str(e["id"]), tuple(e["accelerators"]), _fraction(e, "flops_efficiency", where),
                       tuple(e.get("fit", ())))
            fitted[f.id] = f
    families = list(fitted.values())
    for e in raw:
        if "flops_efficiency" not in e:
            src = fitted.get(e.get("assumed_from", ""))
            if src is None:
                raise InputError(f"{where}: family {e.get('id')!r} has neither flops_efficiency nor a fitted "
                                 f"assumed_from")
            families.append(Family(str(e["id"]), tuple(e["accelerators"]), src.flops_efficiency, (), src.id))
    default = str(t.get("default_family", "nvidia-hopper"))
    if default not in fitted:
        raise InputError(f"{where}: default_family {default!r} is not a fitted family")
    return TrainParams(goodput=_fraction(t, "goodput", where),
                       memory_reserve_fraction=_fraction(t, "memory_reserve_fraction", where),
                       default_family=default, families=tuple(families))


@lru_cache(maxsize=1)
def shipped_params() -> TrainParams:
    from ..catalog import CATALOG

    return params_from_doc(read_toml(CATALOG / "train.toml", "catalog/train.toml"), "catalog/train.toml")
