"""Every examples/fleet-*.toml through `planner fleet FILE --json` (repeatable to the byte, consistent numbers) and
the text output; bad input exits 2 and an infeasible request exits 1, each with one line per reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("fleet-*.toml"))


def _run(*args: str):
    return CliRunner().invoke(main, ["fleet", *args])


_JSON: dict[str, str] = {}


def _json(path: Path) -> str:
    """`planner fleet PATH --json`, run once per session."""
    if path.name not in _JSON:
        r = _run(str(path), "--json")
        assert r.exit_code == 0, r.output
        _JSON[path.name] = r.stdout
    return _JSON[path.name]


def test_there_are_fleet_examples():
    assert len(EXAMPLES) >= 2


# Repeatable to the byte (one worker, deterministic budgets, no wall times): the default suite runs the smallest
# example twice, the slow suite every other one (fleet-day-reserved takes ~6 s a run).
REPEATED_BY_DEFAULT = "fleet-chat-and-summarize.toml"


@pytest.mark.parametrize("path", [pytest.param(p, marks=() if p.name == REPEATED_BY_DEFAULT else pytest.mark.slow)
                                  for p in EXAMPLES], ids=[p.stem for p in EXAMPLES])
def test_fleet_examples_repeat_to_the_byte(path):
    assert _run(str(path), "--json").stdout == _json(path)


def test_the_repeated_example_exists():
    assert ROOT / "examples" / REPEATED_BY_DEFAULT in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_fleet_examples(path):
    first = _json(path)
    d = json.loads(first)
    H = d["hours"]
    assert len(d["cost"]["usd_per_hour"]) == H == len(d["utilization_per_hour"])
    assert d["cost"]["usd_per_month"] == pytest.approx(sum(d["cost"]["usd_per_hour"]) / H * 730, rel=1e-5)
    for t, per_hour in d["gpus"]["per_hour"].items():
        assert per_hour == [sum(p["replicas_per_hour"][h] * p["gpus_per_replica"] for p in d["pools"] if p["gpu"] == t)
                            for h in range(H)]
        limit = d["prices"][t]["available"]
        assert limit is None or max(per_hour) <= limit
    for p in d["pools"]:
        assert min(p["replicas_per_hour"]) >= p["reserved_replicas"] >= 0
        assert sum(p["layers_per_stage"]) == 80 and len(p["layers_per_stage"]) == p["pp"]
        assert p["gpus_per_replica"] == p["tp"] * p["pp"]
    cmp = d["comparison"]
    if cmp.get("best_single_type_usd_per_month") is not None:
        assert d["cost"]["usd_per_month"] <= cmp["best_single_type_usd_per_month"] * (1 + 1e-9)
    if d["budget"]["usd_per_month"] is not None:
        assert d["cost"]["usd_per_month"] <= d["budget"]["usd_per_month"]
    assert d["solver"]["gap"] >= 0


def test_day_example_reserves_the_base_and_buys_the_peak():
    d = json.loads(_json(ROOT / "examples" / "fleet-day-reserved.toml"))
    assert sum(d["gpus"]["reserved"].values()) > 0
    assert any(p["reserved_replicas"] < max(p["replicas_per_hour"]) for p in d["pools"])
    idle = [sum(v[h] for v in d["gpus"]["idle_per_hour"].values()) for h in range(24)]
    assert max(idle) > 0  # the night leaves reserved GPUs idle for other work


def test_text_output():
    r = _run(str(ROOT / "examples" / "fleet-chat-and-summarize.toml"))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("fleet  llama-3.1-70b")
    assert "vs single type" in r.output and "saves" in r.output


def test_bad_input_exits_2_and_infeasible_exits_1(tmp_path):
    r = _run(str(tmp_path / "missing.toml"))
    assert r.exit_code == 2 and r.output.startswith("error:")
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "llama-3.1-8b"\n[[class]]\nname = "a"\nisl = 100\nosl = 100\n', encoding="utf-8")
    r = _run(str(bad))
    assert r.exit_code == 2 and "rate_rps" in r.output and len(r.output.strip().splitlines()) == 1
    tight = tmp_path / "tight.toml"
    tight.write_text('model = "llama-3.1-8b"\ngpus = ["h100-sxm"]\nweights = ["fp8"]\nkv = ["fp8"]\n'
                     'budget_usd_per_hour = 1\n[[class]]\nname = "a"\nisl = 1000\nosl = 300\nrate_rps = 5\n',
                     encoding="utf-8")
    r = _run(str(tight))
    assert r.exit_code == 1 and r.output.startswith("infeasible: budget")
