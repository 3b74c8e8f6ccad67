"""Byte-identity check for behaviour-preserving refactors (issue #11).

    python tools/golden.py capture DIR     # run every golden command, write DIR/<name>.out
    python tools/golden.py capture DIR --matrix   # also the quick plan matrix (benchmarks/plan_matrix --quick)
    python tools/golden.py compare A B     # list the goldens whose output differs between A and B
    python tools/golden.py compare A B --rtol 1e-6   # the same, but floats may differ by that relative amount

Goldens: `planner plan --json` on every plan example, `planner fleet --json` on every fleet example, `planner train --json` on every training example,
`planner estimate --json` on every model preset at one fixed configuration (and once with a draft model),
`planner simulate --json` at a fixed seed on a plan and on a speculative-decoding estimate, `planner frontier
--json` on one example and `planner export --json` for each engine. Each output is stdout, stderr and the exit
code, so a changed error message shows too. (A fleet whose CP-SAT search stops at its wall-clock backstop rather
than its deterministic budget, on a loaded machine, can differ between two runs of the same code: rerun it.) These are not permanent test fixtures: other changes move the
numbers on purpose; capture from the base you start from, then compare after the refactor.
"""
from __future__ import annotations

import difflib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANNER = [sys.executable, "-c", "from planner.cli import main; main()"]


def _run(args: list[str]) -> str:
    r = subprocess.run(PLANNER + args, capture_output=True, text=True, cwd=ROOT)
    return f"$ planner {' '.join(args)}\nrc={r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"


MATRIX = False  # capture ... --matrix: add the quick plan matrix's plans (the large MoE spaces the examples miss)


def matrix_commands() -> dict[str, list[str]]:
    """The plans of `benchmarks/plan_matrix/run.py --quick` (its presets, precisions, workloads and demands), so a
    speed change is checked on the spaces it is meant to speed up."""
    cmds: dict[str, list[str]] = {}
    for preset in ("llama-3.1-70b", "deepseek-v3", "gpt4-moe-rumored", "mixtral-8x22b"):
        for prec, extra in (("default", []), ("all", ["--weights", "bf16,fp8,int8,int4,fp4", "--kv", "bf16,fp8,int8"])):
            for isl, osl in ((2000, 500), (8000, 2000)):
                for demand, rate in (("none", []), ("50rps", ["--rate-rps", "50"])):
                    cmds[f"matrix-{preset}-{prec}-{isl}-{osl}-{demand}"] = [
                        "plan", "--model", preset, "--isl", str(isl), "--osl", str(osl), "--min-tokens-per-s-user",
                        "20", "--max-gpus", "1024", *extra, *rate, "--json"]
    return cmds


def commands(tmp: Path) -> dict[str, list[str]]:
    cmds: dict[str, list[str]] = matrix_commands() if MATRIX else {}
    for ex in sorted((ROOT / "examples").glob("*.toml")):
        rel = str(ex.relative_to(ROOT))
        if ex.name.startswith("fleet"):
            cmds[f"fleet-{ex.stem}"] = ["fleet", rel, "--json"]
        elif ex.name.startswith("train"):
            cmds[f"train-{ex.stem}"] = ["train", rel, "--json"]
        else:
            cmds[f"plan-{ex.stem}"] = ["plan", rel, "--json"]
    for m in sorted((ROOT / "catalog" / "models").glob("*.json")):
        cmds[f"estimate-{m.stem}"] = ["estimate", "--model", m.stem, "--gpu", "h200", "--tp", "8", "--pp", "2",
                                      "--batch", "16", "--isl", "1000", "--osl", "200", "--weights", "fp8",
                                      "--kv", "fp8", "--json"]
    cmds["estimate-spec"] = ["estimate", "--model", "llama-3.1-70b", "--gpu", "h100", "--tp", "4", "--batch", "8",
                             "--isl", "1000", "--osl", "300", "--spec-draft", "llama-3.1-8b", "--json"]
    cmds["frontier-chat-70b"] = ["frontier", "examples/chat-70b.toml", "--json"]
    return cmds


def second_stage(out: Path) -> dict[str, list[str]]:
    """Commands that read a first-stage output (a plan JSON) from a file."""
    cmds: dict[str, list[str]] = {}
    for name in ("plan-chat-70b", "estimate-spec"):
        text = (out / f"{name}.out").read_text()
        body = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]
        f = out / f"{name}.json"
        f.write_text(body)
        cmds[f"simulate-{name}"] = ["simulate", str(f), "--requests", "400", "--seed", "7",
                                    "--lengths", "exponential", "--rate-rps", "1.5", "--json"]
        cmds[f"simulate-static-{name}"] = ["simulate", str(f), "--requests", "200", "--seed", "3",
                                           "--batching", "static", "--balancer", "round-robin", "--rate-rps", "1", "--json"]
    for engine in ("vllm", "sglang", "trtllm", "k8s"):
        cmds[f"export-{engine}"] = ["export", str(out / "plan-chat-70b.json"), "--engine", engine, "--json"]
    return cmds


def capture(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stage in (commands, second_stage):
        cmds = stage(out)
        with ThreadPoolExecutor(2) as ex:
            for name, text in zip(cmds, ex.map(_run, cmds.values())):
                # the plan file's path differs between capture folders: keep only its name
                (out / f"{name}.out").write_text(text.replace(str(out), "<DIR>"))
                print(name, text.split("\n")[1], flush=True)


# a number in a golden's text: an integer (no point, no exponent) must match exactly, a float within --rtol
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def float_difference(a: str, b: str) -> float | None:
    """The largest relative difference |x − y| / max(|x|, |y|) between the floats at the same places of two
    texts that are otherwise the same (the same text between numbers, the same integers, the same count of
    numbers); None where they differ in anything else. Floats are numbers written with a point or an exponent
    (JSON's and Python's repr of a float always has one), so a count, an index or a decision held as an integer
    must match exactly."""
    pa, pb = _NUMBER.split(a), _NUMBER.split(b)
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if pa != pb or len(na) != len(nb):
        return None
    worst = 0.0
    for x, y in zip(na, nb):
        if x == y:
            continue
        if not any(ch in s for s in (x, y) for ch in ".eE"):
            return None  # two different integers
        fx, fy = float(x), float(y)
        worst = max(worst, abs(fx - fy) / max(abs(fx), abs(fy)))
    return worst


def compare(a: Path, b: Path, rtol: float | None = None) -> int:
    """Print the goldens that differ (byte for byte, or with `rtol`: beyond that relative difference in a float or
    in anything but floats) and the count that agree; 1 if any differs."""
    names = sorted({p.name for p in a.glob("*.out")} | {p.name for p in b.glob("*.out")})
    bad, moved, worst = [], 0, 0.0
    for n in names:
        if (a / n).exists() and (b / n).exists() and (a / n).read_bytes() == (b / n).read_bytes():
            continue
        if rtol is not None and (a / n).exists() and (b / n).exists():
            d = float_difference((a / n).read_text(), (b / n).read_text())
            if d is not None and d <= rtol:
                moved += 1
                worst = max(worst, d)
                continue
        bad.append(n)
    for n in bad:
        print("DIFFERS", n)
        if (a / n).exists() and (b / n).exists():
            diff = difflib.unified_diff((a / n).read_text().splitlines(), (b / n).read_text().splitlines(), lineterm="", n=0)
            print("\n".join(list(diff)[2:22]))
    if rtol is None:
        print(f"{len(names) - len(bad)} of {len(names)} identical")
    else:
        print(f"{len(names) - len(bad)} of {len(names)} within rtol {rtol:g}: {len(names) - len(bad) - moved} "
              f"identical, {moved} with floats moved by at most {worst:.3g} relative")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "capture" and sys.argv[3:] in ([], ["--matrix"]):
        MATRIX = sys.argv[3:] == ["--matrix"]
        capture(Path(sys.argv[2]).resolve())
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    elif len(sys.argv) == 6 and sys.argv[1] == "compare" and sys.argv[4] == "--rtol":
        try:
            tolerance = float(sys.argv[5])
        except ValueError:
            sys.exit(f"error: --rtol takes a number, not {sys.argv[5]!r}")
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3]), tolerance))
    else:
        sys.exit(__doc__)
