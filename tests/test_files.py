"""Issue #10 item 6: every file problem is one line with exit 2, `plan --report` prints the plan before writing the
report, numeric inputs have human-scale bounds, a UTF-8 BOM is accepted, simulate prints durations a person reads."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from planner.catalog import CATALOG
from planner.cli import main
from planner.sim.report import duration

PLAN = ["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "200", "--gpus", "h100-sxm"]


def _one_line_exit_2(res):
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 400, res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("plan") / "plan.json"
    res = CliRunner().invoke(main, PLAN + ["--json"])
    p.write_text(res.stdout)
    return p


@pytest.mark.parametrize("report", ["/missing/dir/x.html", "", ".", "/etc/hostname/x.html"])
def test_report_path_problems_are_one_line(report):
    msg = _one_line_exit_2(CliRunner().invoke(main, PLAN + ["--report", report]))
    assert "--report" in msg


def test_plan_is_printed_before_the_report_is_written(monkeypatch, tmp_path):
    from planner import report_html
    from planner.errors import InputError

    def fail(path, plan, frontier=None):
        raise InputError(f"report {path}: cannot write (disk full)")

    monkeypatch.setattr(report_html, "write_report", fail)
    res = CliRunner().invoke(main, PLAN + ["--json", "--report", str(tmp_path / "r.html")])
    _one_line_exit_2(res)
    assert json.loads(res.stdout)["gpu"] == "h100-sxm"  # the plan is not lost


@pytest.mark.parametrize("out", ["", "/etc/hostname/sub"])
def test_export_out_problems_are_one_line(plan_file, out):
    _one_line_exit_2(CliRunner().invoke(main, ["export", str(plan_file), "--out", out]))


def test_plot_path_problem_is_one_line():
    pytest.importorskip("matplotlib")
    _one_line_exit_2(CliRunner().invoke(main, ["frontier"] + PLAN[1:] + ["--speeds", "20", "--plot", "/no/dir/f.png"]))


def test_trace_longer_than_the_kv_cache_is_one_line(plan_file, tmp_path):
    """Every request of the trace exceeds the KV cache: was exit 3 `internal error: IndexError`."""
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,3000000,100\n1,3000000,100\n")
    msg = _one_line_exit_2(CliRunner().invoke(main, ["simulate", str(plan_file), "--trace", str(trace)]))
    assert "longer than the plan's KV cache" in msg


@pytest.mark.parametrize("path", ["", "/no/such/trace.csv", "."])
def test_trace_path_problems_are_one_line(plan_file, path):
    _one_line_exit_2(CliRunner().invoke(main, ["simulate", str(plan_file), "--trace", path]))


def test_config_json_with_a_bom_is_accepted(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_bytes(b"\xef\xbb\xbf" + (CATALOG / "models" / "llama-3.1-8b.json").read_bytes())
    res = CliRunner().invoke(main, ["estimate", "--model", str(d), "--gpu", "h100", "--batch", "1", "--isl", "10",
                                    "--osl", "10"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("flag, value", [("--tpot-ms", "1e-300"), ("--ttft-ms", "1e300"), ("--rate-rps", "1e-300"),
                                         ("--min-tokens-per-s-user", "1e9"), ("--output-tokens-per-s", "1e-30")])
def test_numbers_beyond_human_scale_are_refused_readably(flag, value):
    msg = _one_line_exit_2(CliRunner().invoke(main, PLAN + [flag, value]))
    assert flag in msg and len(msg) < 160


def test_request_file_tpot_of_1e_minus_300_is_refused(tmp_path):
    req = tmp_path / "r.toml"
    req.write_text('model = "llama-3.1-8b"\nisl = 100\nosl = 10\ntpot_ms = 1e-300\n')
    assert "--tpot-ms" in _one_line_exit_2(CliRunner().invoke(main, ["plan", str(req)]))


def test_oversized_integer_is_named_plainly(plan_file, tmp_path):
    p = tmp_path / "big.json"
    p.write_text(plan_file.read_text().replace('"batch": ', '"batch": ' + "9" * 5000 + ", \"x\": ", 1))
    msg = _one_line_exit_2(CliRunner().invoke(main, ["export", str(p)]))
    assert "set_int_max_str_digits" not in msg and "4300 digits" in msg
    t = tmp_path / "big.toml"
    t.write_text('model = "llama-3.1-8b"\nisl = ' + "9" * 5000 + "\nosl = 10\n")
    msg = _one_line_exit_2(CliRunner().invoke(main, ["plan", str(t)]))
    assert "set_int_max_str_digits" not in msg


@pytest.mark.parametrize("seconds, text", [(0.006, "6 ms"), (0.4233, "423 ms"), (1.24, "1.24 s"), (464335.0, "5.37 days"),
                                           (462.0, "7.7 min"), (46440.0, "12.9 h"), (2e-5, "20 µs"), (None, "-")])
def test_durations_read_like_a_person_would_say_them(seconds, text):
    assert duration(seconds) == text


def test_simulate_prints_human_durations(plan_file):
    res = CliRunner().invoke(main, ["simulate", str(plan_file), "--requests", "50", "--rate-rps", "1000"])
    assert res.exit_code == 0, res.output
    ttft = next(line for line in res.stdout.splitlines() if line.strip().startswith("TTFT"))
    assert " ms" in ttft or " s" in ttft
