"""Published training runs (catalog/train_runs.toml) through the training model: the FLOP efficiency per
accelerator family is fitted on the runs marked `fit` (bisection: the efficiency at which the mean log ratio of
predicted to reported utilization is 0), and every run's prediction is set next to what it reported.

    python -m planner.train.calibrate            # the check table (markdown, as in the README)
    python -m planner.train.calibrate --write    # refit and rewrite flops_efficiency in catalog/train.toml
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..catalog import CATALOG, load_catalog, load_model
from ..files import read_toml
from ..specs.model import model_from_config
from .params import Family, TrainParams, shipped_params
from .request import TrainRequest
from .result import estimate
from .step import Layout


@dataclass(frozen=True)
class Run:
    id: str
    fit: bool
    doc: dict

    @property
    def metric(self) -> str:
        return self.doc["metric"]

    @property
    def reported(self) -> float:
        return float(self.doc["reported"])


def runs() -> list[Run]:
    doc = read_toml(CATALOG / "train_runs.toml", "catalog/train_runs.toml")
    return [Run(r["id"], bool(r.get("fit", False)), r) for r in doc["run"]]


def predict(run: Run, params: TrainParams) -> dict[str, float]:
    """The model's MFU / HFU / tokens per s for the run's published layout."""
    r, cat = run.doc, load_catalog()
    model = (model_from_config(dict(r["config"]), name=run.id, where=f"catalog/train_runs.toml [{run.id}]")
             if "config" in r else load_model(r["model"]))
    gpu = cat.gpu(r["gpu"])
    seqs, s = int(r["global_batch_sequences"]), int(r["seq_len"])
    req = TrainRequest(model=model, tokens=1e12, seq_len=s, global_batch_tokens=seqs * s, gpus=(gpu,),
                       params=params, num_gpus=r["tp"] * r["pp"] * r["dp"])
    lay = Layout(gpu=gpu, tp=r["tp"], pp=r["pp"], dp=r["dp"], ep=r.get("ep", 1), cp=r.get("cp", 1), zero=r["zero"],
                 recompute=r["recompute"], micro_batch=r["micro_batch"])
    e = estimate(req, lay, cat.perf)
    return {"mfu": e.metrics["mfu"], "hfu": e.metrics["hfu"], "tokens_per_s": e.metrics["tokens_per_s"],
            "memory_fraction": e.terms["memory_bytes"] / e.capacity_bytes, "gpus": lay.gpus}


def _with_efficiency(params: TrainParams, family: str, eff: float) -> TrainParams:
    fams = tuple(replace(f, flops_efficiency=eff) if f.id == family or f.assumed_from == family else f
                 for f in params.families)
    return replace(params, families=fams)


def fit(params: TrainParams | None = None) -> dict[str, float]:
    """Per fitted family, the efficiency (to 3 decimals) at which its fit runs' mean log(predicted / reported)
    is zero. Bisection: predicted utilization rises monotonically with the efficiency."""
    params = params or shipped_params()
    all_runs = runs()
    out: dict[str, float] = {}
    for fam in params.families:
        if not fam.fit:
            continue
        mine = [r for r in all_runs if r.fit and r.id in fam.fit]

        def err(eff: float) -> float:
            p = _with_efficiency(params, fam.id, eff)
            return sum(math.log(predict(r, p)[r.metric] / r.reported) for r in mine) / len(mine)

        lo, hi = 0.05, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if err(mid) < 0 else (lo, mid)
        out[fam.id] = round((lo + hi) / 2, 3)
    return out


def table(params: TrainParams | None = None) -> list[dict[str, Any]]:
    params = params or shipped_params()
    rows = []
    for r in runs():
        pred = predict(r, params)
        rows.append({"id": r.id, "fit": r.fit, "gpus": pred["gpus"], "gpu": r.doc["gpu"], "metric": r.metric,
                     "reported": r.reported, "predicted": pred[r.metric],
                     "error": pred[r.metric] / r.reported - 1.0, "source": r.doc["source"],
                     "memory_fraction": pred["memory_fraction"],
                     "reported_text": r.doc["reported_text"]})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| run | GPUs | reported | predicted | error | role | modelled memory / usable |",
           "|---|---:|---|---|---:|---|---:|"]
    for x in rows:
        out.append(f"| {x['id']} | {x['gpus']:,} {x['gpu']} | {x['metric'].upper()} {x['reported']:.1%} | "
                   f"{x['metric'].upper()} {x['predicted']:.1%} | {x['error']:+.1%} | "
                   f"{'fit' if x['fit'] else 'check'} | {x['memory_fraction']:.2f} |")
    return "\n".join(out)


def write(values: dict[str, float], path: Path | None = None) -> None:
    """Rewrite `flops_efficiency = ...` of each fitted [[family]] in catalog/train.toml."""
    path = path or Path(str(CATALOG / "train.toml"))
    text = path.read_text(encoding="utf-8")
    for fam, v in values.items():
        text, n = re.subn(rf'(id = "{re.escape(fam)}"\n(?:[^\[\n][^\n]*\n)*?flops_efficiency = )[0-9.]+',
                          rf"\g<1>{v}", text)
        if n != 1:
            raise RuntimeError(f"could not find flops_efficiency of family {fam} in {path}")
    path.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    if "--write" in argv:
        values = fit()
        write(values)
        shipped_params.cache_clear()
        print("fitted:", ", ".join(f"{k} {v}" for k, v in values.items()))
    print(markdown(table()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
