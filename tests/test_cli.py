"""planner/cli.py: flags become one API call, and every error becomes one line on stderr with its exit code
(2 bad input, 1 infeasible, 3 a bug), a traceback only with --debug."""
from __future__ import annotations

import json

from click.testing import CliRunner

from planner import api, cli
from planner.cli import main

EST = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "1", "--isl", "100", "--osl", "10"]


def run(args):
    return CliRunner().invoke(main, args, prog_name="planner")


def test_plan_flags_become_the_request_options_of_one_api_call(monkeypatch):
    seen = {}

    class Fake:
        def to_dict(self):
            return {"ok": True}

    def fake_plan(request, /, *, timings, **options):
        seen.update(request=request, timings=timings, options=options)
        return Fake()

    monkeypatch.setattr(api, "plan", fake_plan)
    r = run(["plan", "examples/chat-70b.toml", "--rate-rps", "3", "--catalog", "my.toml", "--max-gpus-per-type",
             "h100=8", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"ok": True}
    assert seen["request"] == "examples/chat-70b.toml" and seen["timings"] is False
    given = {k: v for k, v in seen["options"].items() if v not in (None, ())}
    assert given == {"rate_rps": 3.0, "catalog": "my.toml", "max_gpus_per_type": ("h100=8",)}
    assert "catalog_file" not in seen["options"]  # the flag's name is the request key's


def test_bad_input_is_one_line_exit_2():
    r = run(["estimate", "--model", "no-such-model", *EST[3:]])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    r = run([*EST, "--tp", "x"])  # a click usage error inside a command
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "(see 'planner estimate --help')" in r.stderr
    r = run(["--bogus"])  # a top-level flag
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "--bogus" in r.stderr and r.stderr.startswith("error: ")


def test_infeasible_is_one_line_per_reason_exit_1():
    r = run(["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "100", "--gpus", "l4", "--weights",
             "bf16", "--kv", "bf16", "--max-gpus", "1", "--tpot-ms", "1"])
    lines = r.stderr.splitlines()
    assert r.exit_code == 1 and lines and all(line.startswith("infeasible: ") for line in lines)


def test_a_bug_is_one_line_exit_3_and_debug_shows_the_traceback(monkeypatch):
    def broken(*_, **__):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(api, "estimate", broken)
    r = run(EST)
    assert r.exit_code == 3
    assert r.stderr == "internal error: RuntimeError: boom\\u000asecond line (rerun with --debug for the traceback)\n"
    try:
        r = run(["--debug", *EST])
        assert r.exit_code == 3 and "Traceback" in r.stderr
    finally:
        cli.DEBUG["on"] = False
