"""Issue #17: `planner export` of `planner estimate --json` output, with a draft model: SGLang's STANDALONE flags and
TensorRT-LLM's draft/target speculative_config, every flag and key recorded in catalog/engines/<engine>.toml; vLLM
0.11.0 (no separate draft models) refuses in one line naming the engines that run it."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

import planner
from planner.cli import main
from planner.errors import InputError

from .flags import check_argv, engine_doc, script_commands, yaml_keys

GAMMA = 3


def _estimate(tmp_path, *extra):
    res = CliRunner().invoke(main, ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4",
                                    "--isl", "1000", "--osl", "200", "--batch", "8", "--json", *extra])
    assert res.exit_code == 0, res.output
    p = tmp_path / "est.json"
    p.write_text(res.stdout)
    return p


@pytest.fixture
def spec_estimate(tmp_path):
    return _estimate(tmp_path, "--spec-draft", "llama-3.1-8b", "--spec-gamma", str(GAMMA))


def _export(path, *args):
    return CliRunner().invoke(main, ["export", str(path), *args])


def test_sglang_gets_standalone_draft_flags(spec_estimate, tmp_path):
    res = _export(spec_estimate, "--engine", "sglang", "--json")
    assert res.exit_code == 0, res.output
    ex = json.loads(res.stdout)
    argv = ex["argv"]
    assert check_argv("sglang", argv) == []
    args = dict(zip(argv, argv[1:]))
    assert args["--speculative-algorithm"] == "STANDALONE"
    assert args["--speculative-draft-model-path"] == "meta-llama/Llama-3.1-8B"
    assert int(args["--speculative-num-steps"]) == GAMMA and int(args["--speculative-eagle-topk"]) == 1
    assert int(args["--speculative-num-draft-tokens"]) == GAMMA + 1
    assert args["--tp-size"] == "4" and ex["layout"]["exact"]


def test_trtllm_gets_draft_target_speculative_config(spec_estimate):
    ex = planner.export(json.loads(spec_estimate.read_text()), "trtllm")
    commands, _, files = script_commands(ex.script())
    assert commands == [ex.argv] and check_argv("trtllm", ex.argv) == []
    options = yaml.safe_load(files["extra-llm-api-options.yaml"])
    assert set(yaml_keys(options)) <= {k["name"] for k in engine_doc("trtllm")["yaml_key"]}
    assert options["speculative_config"] == {"decoding_type": "DraftTarget", "max_draft_len": GAMMA,
                                             "speculative_model_dir": "meta-llama/Llama-3.1-8B"}
    assert options["disable_overlap_scheduler"] is True


def test_vllm_refuses_a_draft_model_in_one_line(spec_estimate):
    res = _export(spec_estimate, "--engine", "vllm")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "draft model" in res.stderr and "--engine sglang or trtllm" in res.stderr
    res = _export(spec_estimate, "--engine", "k8s", "--k8s-engine", "vllm")
    assert res.exit_code == 2
    res = _export(spec_estimate, "--engine", "k8s", "--k8s-engine", "sglang")
    assert res.exit_code == 0 and "STANDALONE" in res.stdout


def test_estimate_without_a_draft_exports_like_a_plan(tmp_path):
    res = _export(_estimate(tmp_path), "--engine", "vllm", "--json")
    assert res.exit_code == 0, res.output
    argv = json.loads(res.stdout)["argv"]
    assert check_argv("vllm", argv) == [] and not any(a.startswith("--speculative") for a in argv)
    sg = planner.export(json.loads((tmp_path / "est.json").read_text()), "sglang").argv
    assert not any(a.startswith("--speculative") for a in sg)


@pytest.mark.parametrize("bad", [{"draft": "llama-3.1-8b", "gamma": 0, "alpha": 0.7}, {"draft": "", "gamma": 4},
                                 {"draft": "--x", "gamma": 4, "alpha": 0.5}, "llama"])
def test_bad_speculative_field_is_one_line_exit_2(spec_estimate, bad):
    doc = json.loads(spec_estimate.read_text())
    doc["inputs"]["speculative"] = bad
    spec_estimate.write_text(json.dumps(doc))
    res = _export(spec_estimate, "--engine", "sglang")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "speculative" in res.stderr


def test_sglang_refuses_a_draft_model_with_attention_dp(spec_estimate):
    doc = json.loads(spec_estimate.read_text())
    from planner.export.draft import plan_from_estimate

    p = plan_from_estimate(doc)
    p["parallelism"] = {**p["parallelism"], "tp": 2, "dp": 2}
    with pytest.raises(InputError, match="dp attention"):
        planner.export(p, "sglang")
