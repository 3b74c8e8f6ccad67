"""`planner export PLAN.json --engine ...` and `planner.export(plan, engine)` from Python."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

import planner
from planner.cli import main

from .conftest import EXAMPLES
from .flags import check_argv, script_commands


@pytest.fixture()
def plan_file(tmp_path, example_plan):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(example_plan(EXAMPLES[0])))
    return p


def test_cli_prints_the_launch_script(plan_file):
    res = CliRunner().invoke(main, ["export", str(plan_file), "--engine", "sglang"])
    assert res.exit_code == 0, res.output
    commands, _, _ = script_commands(res.stdout)
    assert check_argv("sglang", commands[0]) == []


def test_cli_json_and_out_dir(plan_file, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["export", str(plan_file), "--engine", "trtllm", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["engine"] == "trtllm" and d["argv"][0] == "trtllm-serve" and "extra-llm-api-options.yaml" in d["files"]
    assert (out / "launch.sh").read_text().startswith("#!/bin/sh")
    assert (out / "extra-llm-api-options.yaml").read_text() == d["files"]["extra-llm-api-options.yaml"]
    res = CliRunner().invoke(main, ["export", str(plan_file), "--engine", "k8s", "--k8s-engine", "sglang",
                                    "--out", str(out)])
    assert res.exit_code == 0 and "\nkind: Deployment\n" in (out / "manifest.yaml").read_text()


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_launch_script_is_valid_shell(plan_file, tmp_path):
    import subprocess

    for engine in ("vllm", "sglang", "trtllm"):
        script = tmp_path / f"{engine}.sh"
        res = CliRunner().invoke(main, ["export", str(plan_file), "--engine", engine])
        script.write_text(res.stdout)
        assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0


def test_model_path_override(plan_file):
    res = CliRunner().invoke(main, ["export", str(plan_file), "--model-path", "/weights/llama-fp8"])
    assert res.exit_code == 0 and "vllm serve /weights/llama-fp8" in res.stdout


def test_unknown_engine_and_bad_file_are_one_line_errors(plan_file, tmp_path):
    res = CliRunner().invoke(main, ["export", str(plan_file), "--engine", "tgi"])
    assert res.exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    res = CliRunner().invoke(main, ["export", str(bad)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "bad.json" in res.stderr


def test_plan_of_a_config_json_model_needs_model(tmp_path, preset):
    """A plan made from a local config.json names a model that is not a preset: export asks for --model and then
    uses it to check the layout."""
    from planner.catalog import CATALOG

    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text((CATALOG / "models" / "llama-3.1-8b.json").read_text())
    plan = planner.plan(str(folder), isl=500, osl=100, gpus="h100-sxm", min_tokens_per_s_user=20,
                        time_limit_s=20).to_dict()
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    res = CliRunner().invoke(main, ["export", str(path)])
    assert res.exit_code == 2 and "--model" in res.stderr
    res = CliRunner().invoke(main, ["export", str(path), "--model", str(folder / "config.json")])
    assert res.exit_code == 0, res.output
    assert f"vllm serve {folder} " in res.stdout, "the weights are served from the folder holding config.json"


def test_python_api_takes_a_plan_or_its_dict(example_plan):
    p = planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", min_tokens_per_s_user=30, time_limit_s=20)
    assert planner.export(p, "vllm").argv == planner.export(p.to_dict(), "vllm").argv
    assert planner.api.export(p, "trtllm").engine == "trtllm"
    from planner.export.k8s import dns_name  # the package stays importable next to the call

    assert dns_name("Llama-3.1-8B") == "llama-3-1-8b"
