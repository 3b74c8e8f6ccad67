"""Every request file in examples/ through `planner plan FILE --json`: the JSON validates against the shipped
schema and is byte-identical across runs, the plan re-verifies in floating point, and its numbers are consistent
(layers sum to the model's, TP within the scale-up domain, cost = GPUs × price)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.catalog import load_catalog, load_model
from planner.cli import main
from planner.plan import plan_schema
from planner.disagg import verify as disagg_verify
from planner.search.solve import verify

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# fleet-*.toml are `planner fleet` requests, run by tests/fleet/test_examples_fleet.py; train-*.toml are
# `planner train` requests, run by tests/train/test_examples_train.py
EXAMPLES = sorted(p for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.toml")
                  if not p.name.startswith(("fleet-", "train-")))


def test_there_are_examples():
    assert len(EXAMPLES) >= 4


def _cli_json(path: Path) -> str:
    r = CliRunner().invoke(main, ["plan", str(path), "--json"])
    assert r.exit_code == 0, r.output
    return r.stdout


_FIRST: dict[str, str] = {}


def _first_json(path: Path) -> str:
    """`planner plan PATH --json`, run once per session."""
    if path.name not in _FIRST:
        _FIRST[path.name] = _cli_json(path)
    return _FIRST[path.name]


@pytest.fixture(scope="module")
def schema():
    return plan_schema()


# Repeatable to the byte (one worker, fixed seed, no wall times): a second run of every example in the same process
# is in the slow suite (test_example_plans_repeat_to_the_byte); the default suite checks the same property on
# examples/chat-70b.toml and a Mixtral plan with a demand, in one process and across processes
# (tests/reliability/test_determinism.py).
@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_plans_repeat_to_the_byte(path):
    assert _cli_json(path) == _first_json(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_plans(path, schema):
    first = _first_json(path)
    d = json.loads(first)
    jsonschema.validate(d, schema)

    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    for key in ("model", "catalog"):  # paths in a request file are relative to it (presets are not paths)
        if key in doc and (key == "catalog" or doc[key].endswith(".json") or "/" in doc[key]):
            doc[key] = str(path.parent / doc[key])
    model = load_model(doc["model"])
    cat = load_catalog(doc.get("catalog"), price_tier=doc.get("price_tier"))
    gpu = cat.gpu(d["gpu"])
    assert sum(d["placement"]["layers_per_stage"]) == model.num_layers
    assert len(d["placement"]["layers_per_stage"]) == d["parallelism"]["pp"]
    assert gpu.intra_node_link(d["parallelism"]["tp"]) is not None  # TP inside one domain or PCIe host
    par = d["parallelism"]
    assert d["gpus_per_replica"] == par["tp"] * par["dp"] * par["pp"]
    pools = d.get("pools", {})  # a disaggregated plan (planner/disagg.py): totals cover both pools
    for x in pools.values():
        assert sum(x["layers_per_stage"]) == model.num_layers
        assert x["gpus"] == x["gpus_per_replica"] * x["replicas"] == x["tp"] * x["dp"] * x["pp"] * x["replicas"]
        assert x["usd_per_hour"] == pytest.approx(x["gpus"] * cat.gpu(x["gpu"]).usd_per_hour, rel=1e-5)
    replicas_gpus = [(x["replicas"], x["gpus_per_replica"]) for x in pools.values()] or [
        (d["parallelism"]["replicas"], d["gpus_per_replica"])]
    assert d["total_gpus"] == sum(n * g for n, g in replicas_gpus)
    assert d["batch"] == d["micro_batch"] * d["parallelism"]["pp"]
    assert d["cost"]["usd_per_hour_per_gpu"] == pytest.approx(gpu.usd_per_hour)
    if not pools:
        assert d["cost"]["usd_per_hour"] == pytest.approx(d["total_gpus"] * d["cost"]["usd_per_hour_per_gpu"],
                                                          rel=1e-5)
    else:
        assert d["cost"]["usd_per_hour"] == pytest.approx(sum(x["usd_per_hour"] for x in pools.values()), rel=1e-5)
    if "gpus" in doc:
        assert d["gpu"] in {cat.gpu(g).id for g in doc["gpus"]}
    if "max_gpus" in doc:
        assert d["total_gpus"] <= doc["max_gpus"]
    assert d["solver"]["status"] == "OPTIMAL"

    # the same request through the Python API: the plan it returns verifies in floating point
    kwargs = {k: v for k, v in doc.items() if k != "description"}
    p = api.plan(**kwargs)
    assert verify(p.result.request, p.best) == []
    if pools:
        assert disagg_verify(p.disagg.request, p.disagg.choice) == []
    assert p.to_dict() == d
