"""Issue #17: `planner estimate --engine E` warns on stderr (one line per reason, exit 0) when the support matrix
(catalog/engines/support.toml) says E cannot run the configuration; no warning without --engine or when it can."""
from __future__ import annotations

import json

from click.testing import CliRunner

from planner.cli import main

BASE = ["estimate", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "200", "--batch", "8"]


def _run(*args):
    return CliRunner().invoke(main, [*BASE, *args])


def test_engine_that_cannot_run_the_configuration_warns_on_stderr():
    res = _run("--gpu", "h100-sxm", "--weights", "int8", "--kv", "bf16", "--engine", "trtllm", "--json")
    assert res.exit_code == 0, res.output
    json.loads(res.stdout)  # stdout stays the JSON
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: trtllm cannot run int8 weights") and "[" in lines[0]


def test_draft_model_on_vllm_warns():
    res = _run("--gpu", "h100-sxm", "--spec-draft", "llama-3.1-8b", "--engine", "vllm")
    assert res.exit_code == 0, res.output
    assert "warning: vllm cannot run draft model" in res.stderr


def test_no_warning_when_the_engine_runs_it_or_none_is_named():
    for args in (("--gpu", "h100-sxm", "--weights", "fp8", "--engine", "trtllm"),
                 ("--gpu", "h100-sxm", "--weights", "int8", "--kv", "bf16"),
                 ("--gpu", "mi300x", "--engine", "sglang")):
        res = _run(*args)
        assert res.exit_code == 0 and "warning" not in res.stderr, (args, res.output)
    res = _run("--gpu", "mi300x", "--engine", "trtllm")
    assert res.exit_code == 0 and "NVIDIA GPUs only" in res.stderr
