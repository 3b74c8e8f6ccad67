"""`planner train`: flags, request files, one-line errors with exit 2, infeasible exit 1, repeatable JSON."""
import json

import pytest
from click.testing import CliRunner

from planner.cli import main

BASE = ["train", "--model", "llama-3.1-8b", "--tokens", "1e11", "--gpus", "h100-sxm", "--max-gpus", "64",
        "--seq-len", "4096", "--global-batch-tokens", "262144"]


def run(args):
    return CliRunner().invoke(main, args)


def test_json_is_repeatable_and_text_prints():
    a, b = run(BASE + ["--deadline-days", "30", "--json"]), run(BASE + ["--deadline-days", "30", "--json"])
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout
    d = json.loads(a.stdout)
    for key in ("model", "gpu", "total_gpus", "parallelism", "flops_total", "mfu", "tokens_per_s", "days",
                "gpu_hours", "cost", "memory_per_gpu_bytes", "binding_constraints", "solver"):
        assert key in d
    assert set(d["parallelism"]) >= {"tp", "pp", "dp", "ep", "zero_stage", "recompute"}
    t = run(BASE + ["--deadline-days", "30"])
    assert t.exit_code == 0 and "h100-sxm" in t.stdout and "days" in t.stdout


def test_tokens_accepts_suffixes():
    a = json.loads(run(BASE[:4] + ["100B"] + BASE[5:] + ["--deadline-days", "30", "--json"]).stdout)
    b = json.loads(run(BASE + ["--deadline-days", "30", "--json"]).stdout)
    assert a == b


@pytest.mark.parametrize("args,needle", [
    (["--tokens", "lots"], "--tokens must be a number"),
    (["--tokens", "-5"], "--tokens must be a number > 0"),
    (["--deadline-days", "0"], "--deadline-days must be a number > 0"),
    (["--num-gpus", "8", "--deadline-days", "9"], "give --num-gpus or --max-gpus, not both"),
    (["--global-batch-tokens", "1000", "--deadline-days", "9"], "must be a multiple of --seq-len"),
    (["--gpus", "h1OO", "--deadline-days", "9"], "unknown GPU 'h1OO'"),
    (["--goodput", "1.5", "--deadline-days", "9"], "--goodput must be a number in (0, 1]"),
    (["--price-tier", "cheap", "--deadline-days", "9"], "error:"),
    ([], "give --num-gpus, --deadline-days or --budget-usd"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    r = run(BASE + args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output


def test_missing_model():
    r = run(["train", "--tokens", "1e9", "--deadline-days", "3"])
    assert r.exit_code == 2 and r.stderr.strip() == "error: missing --model"


def test_infeasible_is_exit_1():
    r = run(BASE + ["--deadline-days", "0.01"])
    assert r.exit_code == 1
    assert r.stderr.startswith("infeasible: deadline:")


def test_request_file_and_its_errors(tmp_path):
    good = tmp_path / "t.toml"
    good.write_text('model = "llama-3.1-8b"\ntokens = "1e11"\ngpus = ["h100-sxm"]\nmax_gpus = 64\nseq_len = 4096\n'
                    'global_batch_tokens = 262144\ndeadline_days = 30\n')
    a = run(["train", str(good), "--json"])
    assert a.exit_code == 0, a.output
    assert a.stdout == run(BASE + ["--deadline-days", "30", "--json"]).stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "llama-3.1-8b"\ntokns = 5\n')
    r = run(["train", str(bad)])
    assert r.exit_code == 2 and f"{bad}: unknown key 'tokns' (did you mean 'tokens'?" in r.stderr
    bad.write_text('model = "llama-3.1-8b"\ntokens = 1e11\nseq_len = 0\ndeadline_days = 3\n')
    r = run(["train", str(bad)])
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {bad}: seq_len must be an integer")
