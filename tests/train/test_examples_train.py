"""Every examples/train-*.toml through `planner train FILE --json`: schema-valid, byte-identical across runs, the
layout re-verifies, the numbers are consistent, and the API gives the same answer."""
import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.train.result import train_schema, train_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("train-*.toml"))


def test_there_is_a_training_example():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_training_example(path):
    first = CliRunner().invoke(main, ["train", str(path), "--json"])
    assert first.exit_code == 0, first.output
    assert CliRunner().invoke(main, ["train", str(path), "--json"]).stdout == first.stdout
    d = json.loads(first.stdout)
    jsonschema.validate(d, train_schema())
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    p = d["parallelism"]
    assert d["total_gpus"] == p["tp"] * p["pp"] * p["dp"] * p["cp"]
    assert d["memory_per_gpu_bytes"]["total"] <= d["memory_per_gpu_bytes"]["capacity"]
    if "deadline_days" in doc:
        assert d["days"] <= doc["deadline_days"]
    if "budget_usd" in doc:
        assert d["cost"]["usd_total"] <= doc["budget_usd"]
    assert d["cost"]["usd_total"] == pytest.approx(d["gpu_hours"] * d["cost"]["usd_per_hour_per_gpu"], rel=1e-5)
    assert d["solver"]["status"] == "OPTIMAL"
    assert api.train(request=path).to_dict() == d
    if path.name == "train-gpt4-moe-90-days.toml":  # the README shows this run's output as produced
        readme = (path.parents[1] / "README.md").read_text(encoding="utf-8")
        assert train_text(d) in readme
