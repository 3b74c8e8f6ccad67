"""Every bad input of cases.py through the CLI (click's CliRunner, stdout and stderr apart): exit 2 for bad input or
1 for an infeasible request, one line on stderr (one per blocking constraint when infeasible), no traceback, and the
file / field / problem named where the case pins it. A few cases also run as real subprocesses of `planner`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner.cli import main

from .cases import ESTIMATE, KNOWN_FAILURES, VALID_PLAN_ARGV, Case, all_cases, plan_file_commands, problems


@lru_cache(maxsize=1)
def _valid_plan() -> bytes:
    res = CliRunner().invoke(main, VALID_PLAN_ARGV)
    assert res.exit_code == 0, res.stderr
    return res.stdout.encode("utf-8")


OPTIONAL = tuple(c for c in ("fleet", "train") if c in main.commands)
CASES = all_cases(plan_file_commands(main), _valid_plan() if plan_file_commands(main) else None, OPTIONAL)


def test_corpus_covers_every_kind_and_command():
    kinds = {c.kind for c in CASES}
    assert {"flag", "name", "catalog", "request", "config"} <= kinds
    commands = {c.argv[0] for c in CASES}
    assert {"estimate", "plan", "frontier"} <= commands
    assert set(plan_file_commands(main)) | set(OPTIONAL) <= commands
    assert len(CASES) > 900


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[c.id], strict=False))
                                  if c.id in KNOWN_FAILURES else c for c in CASES], ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_line(case: Case, tmp_path: Path, runner: CliRunner):
    argv = case.materialize(tmp_path)
    res = runner.invoke(main, argv)
    assert not problems(case, res.exit_code, res.stdout, res.stderr), \
        f"{problems(case, res.exit_code, res.stdout, res.stderr)}\nstderr: {res.stderr}\nstdout: {res.stdout[:500]}"


def _planner_cmd() -> list[str]:
    script = Path(sys.executable).parent / "planner"
    if script.exists():
        return [str(script)]
    found = shutil.which("planner")
    return [found] if found else [sys.executable, "-c", "from planner.cli import main; main()"]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    return subprocess.run(_planner_cmd() + argv, capture_output=True, text=True, timeout=120, env=env)


# one case of each kind (and each plan-file command), run as a real process: what a shell script calling the
# planner in a loop sees
SUBPROCESS_LABELS = [
    "flag:estimate --tp text", "flag:unknown top-level option", "name:plan --model llama-3.1-7b",
    "catalog:plan truncated", "catalog:estimate hbm_tb_s zero", "request:plan not UTF-8",
    "request:frontier isl negative", "config:estimate NaN", "config:plan deeply nested",
    "flag:plan unreachable speed",
] + [f"plan-json:{cmd} truncated" for cmd in plan_file_commands(main)]


@pytest.mark.parametrize("label", SUBPROCESS_LABELS)
def test_bad_input_subprocess(label: str, tmp_path: Path):
    case = next(c for c in CASES if c.id == label)
    res = _run(case.materialize(tmp_path))
    assert not problems(case, res.returncode, res.stdout, res.stderr), f"{res.returncode}\n{res.stderr}"


def test_debug_flag_shows_the_traceback():
    argv = ["--debug"] + ESTIMATE[:2] + ["nope-model"] + ESTIMATE[3:]
    res = _run(argv)
    assert res.returncode == 2
    assert "Traceback" in res.stderr and "unknown model" in res.stderr


def test_help_and_version_still_work(runner: CliRunner):
    assert runner.invoke(main, ["--help"]).exit_code == 0
    assert runner.invoke(main, ["plan", "--help"]).exit_code == 0
    assert runner.invoke(main, ["--version"]).exit_code == 0
