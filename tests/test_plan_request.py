"""planner/plan_request.py: the library reads, validates and merges a plan request (TOML file or dict) with
keyword options, so `planner.plan(file, **options)` is what `planner plan FILE --flags` is; errors name the file
and key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import planner
from planner import plan_request
from planner.cli import main
from planner.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_library_plan_of_a_request_file_with_an_override_is_the_cli_plan():
    path = EXAMPLES / "long-context-32k.toml"
    lib = planner.plan(str(path), rate_rps=3).to_dict()
    r = CliRunner().invoke(main, ["plan", str(path), "--rate-rps", "3", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == lib
    assert lib["workload"]["rate_rps"] == 3


def test_a_dict_request_is_the_file_request(tmp_path):
    doc = {"model": "llama-3.1-8b", "isl": 1000, "osl": 200, "rate_rps": 2.0, "gpus": ["h100-sxm"],
           "time_limit_s": 5}
    f = tmp_path / "r.toml"
    f.write_text('model = "llama-3.1-8b"\nisl = 1000\nosl = 200\nrate_rps = 2.0\ngpus = ["h100-sxm"]\n'
                 'time_limit_s = 5\n')
    assert planner.plan(doc).to_dict() == planner.plan(f).to_dict()
    # ... and keyword options alone, with the model first
    assert planner.plan("llama-3.1-8b", isl=1000, osl=200, rate_rps=2.0, gpus="h100-sxm",
                        time_limit_s=5).to_dict() == planner.plan(doc).to_dict()


def test_merge_overrides_the_same_quantity_in_its_other_unit():
    doc = plan_request.read({"model": "m", "isl": 1, "osl": 2, "rate_rps": 3.0, "tpot_ms": 50})
    out = plan_request.merge(doc, {"output_tokens_per_s": 100.0, "min_tokens_per_s_user": None})
    assert out["output_tokens_per_s"] == 100.0 and "rate_rps" not in out
    assert out["tpot_ms"] == 50  # None does not override
    out = plan_request.merge(doc, {"min_tokens_per_s_user": 20.0})
    assert "tpot_ms" not in out and out["min_tokens_per_s_user"] == 20.0


def test_gpu_limits_as_flags_become_a_table():
    out = plan_request.merge({}, {"model": "m", "isl": 1, "osl": 1, "max_gpus_per_type": ("h100-sxm=8", "a100=0")})
    assert out["max_gpus_per_type"] == {"h100-sxm": 8, "a100": 0}
    with pytest.raises(InputError, match="expects TYPE=N"):
        plan_request.merge({}, {"model": "m", "isl": 1, "osl": 1, "max_gpus_per_type": ("h100-sxm",)})


def test_errors_name_the_file_and_the_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('model = "llama-3.1-8b"\nisl = 0\nosl = 10\n')
    with pytest.raises(InputError, match=r"bad\.toml: isl must be an integer from 1"):
        planner.plan(f)
    f.write_text('model = "llama-3.1-8b"\nisl = 10\nosl = 10\nratee_rps = 1\n')
    with pytest.raises(InputError, match=r"bad\.toml: unknown key 'ratee_rps' \(did you mean 'rate_rps'"):
        planner.plan(f)
    f.write_text('model = "no-such-model"\nisl = 10\nosl = 10\n')
    with pytest.raises(InputError, match=r"bad\.toml: model: "):
        planner.plan(f)
    with pytest.raises(InputError, match=r"^request: unknown key 'foo'"):
        planner.plan({"model": "llama-3.1-8b", "isl": 1, "osl": 1, "foo": 1})
    with pytest.raises(InputError, match=r"missing --osl \(flag, or key 'osl' in .*bad\.toml\)"):
        f.write_text('model = "llama-3.1-8b"\nisl = 10\n')
        planner.plan(f)


def test_relative_paths_in_a_request_file_are_relative_to_it(tmp_path):
    f = tmp_path / "sub" / "r.toml"
    f.parent.mkdir()
    f.write_text('model = "models/my.json"\ncatalog = "cat.toml"\nisl = 1\nosl = 1\n')
    doc = plan_request.read_file(f)
    assert doc["model"] == str(f.parent / "models/my.json") and doc["catalog"] == str(f.parent / "cat.toml")


def test_is_request_tells_a_request_from_a_model():
    assert plan_request.is_request("x/chat.toml") and plan_request.is_request(Path("a.toml"))
    assert plan_request.is_request({"model": "m"})
    assert not plan_request.is_request("llama-3.1-8b") and not plan_request.is_request("config.json")
