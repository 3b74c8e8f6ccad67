"""Identical input gives byte-identical JSON: across processes (with different hash seeds, so no set or dict order
leaks into the output) and whatever order the GPUs are listed in. The solver runs one worker with a fixed seed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.cli import main

from .strategies import catalog_toml

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = {
    "plan": ["plan", str(ROOT / "examples" / "chat-70b.toml"), "--json"],
    "plan-moe-demand": ["plan", "--model", "mixtral-8x7b", "--gpus", "h100,mi300x,a100-80gb", "--isl", "1500",
                        "--osl", "400", "--output-tokens-per-s", "20000", "--ttft-ms", "2000", "--json"],
    "frontier": ["frontier", "--model", "llama-3.1-70b", "--gpus", "h100,h200", "--isl", "2000", "--osl", "300",
                 "--speeds", "10,30,60", "--json"],
    "estimate": ["estimate", "--model", "deepseek-v3", "--gpu", "h200", "--tp", "8", "--pp", "2", "--ep", "8",
                 "--batch", "64", "--isl", "2000", "--osl", "500", "--weights", "fp8", "--json"],
    "train": ["train", "--model", "mixtral-8x7b", "--tokens", "2T", "--gpus", "h100,a100-80gb,mi300x",
              "--max-gpus", "512", "--seq-len", "4096", "--global-batch-tokens", "4194304", "--deadline-days", "60",
              "--json"],
}


def _run(argv: list[str], hashseed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    res = subprocess.run([sys.executable, "-c", "from planner.cli import main; main()", *argv], capture_output=True,
                         timeout=300, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_same_input_same_bytes_across_processes(name: str):
    first, second = _run(COMMANDS[name], "0"), _run(COMMANDS[name], "4242")
    assert first == second
    json.loads(first)  # and it is JSON


def test_same_input_same_bytes_in_one_process(runner: CliRunner):
    for argv in COMMANDS.values():
        outs = {runner.invoke(main, argv).stdout for _ in range(2)}
        assert len(outs) == 1


def test_gpu_and_catalog_order_do_not_matter(tmp_path: Path, runner: CliRunner):
    entries = [
        {"id": f"gpu-{k}", "memory_gib": 80 + 16 * k, "hbm_tb_s": 2.0 + k, "tflops": {"bf16": 400.0 + 100 * k},
         "scale_up": {"domain_size": 8, "gb_s": 300.0}, "scale_out": {"gbit_s": 400.0},
         "prices": {"market": {"usd_per_hour": 1.5 + 0.7 * k}}} for k in range(3)]
    outs = set()
    for order, gpus in (((0, 1, 2), "gpu-0,gpu-1,gpu-2,h100"), ((2, 0, 1), "h100,gpu-2,gpu-1,gpu-0")):
        cat = tmp_path / f"cat-{order[0]}.toml"
        cat.write_text(catalog_toml([entries[k] for k in order]), encoding="utf-8")
        res = runner.invoke(main, ["plan", "--model", "llama-3.1-70b", "--catalog", str(cat), "--gpus", gpus,
                                   "--isl", "1000", "--osl", "200", "--rate-rps", "3", "--json"])
        assert res.exit_code == 0, res.stderr
        outs.add(res.stdout)
    assert len(outs) == 1


def test_timings_are_opt_in(runner: CliRunner):
    d = json.loads(runner.invoke(main, COMMANDS["plan"]).stdout)
    assert "wall_s" not in d["solver"] and d["solver"]["workers"] == 1 and d["solver"]["seed"] == 0
