"""Run a generated launch script with stand-in engine binaries and record every external command it runs.

PATH holds only a folder of stand-ins: one per engine command (`vllm`, `python3`, `trtllm-serve`) that records its
argv and exits 0, and `cat` (the scripts write config files with `cat > FILE <<'EOF'`), which records its argv and
runs /bin/cat. Any other external command is not found, so `set -e` stops the script; builtins that could do harm
(`eval`, `.`, redirections) would show up as stray output, files or calls. Records are NUL-separated:
argc, name, args."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

STAND_INS = ("vllm", "python3", "trtllm-serve", "cat", "ray", "srun")
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]

_RECORD = '#!/bin/sh\nprintf \'%s\\0\' "$#" "{name}" "$@" >> "$PLANNER_TEST_LOG"\n'


@dataclass
class Run:
    returncode: int
    calls: list[list[str]]  # [name, *args] per external command, in order
    stdout: str
    stderr: str
    new_files: list[str]  # files the script left in its working directory, besides itself


def stand_ins(root: Path) -> Path:
    bin_dir = root / "bin"
    if bin_dir.is_dir():
        return bin_dir
    bin_dir.mkdir(parents=True)
    for name in STAND_INS:
        body = _RECORD.format(name=name)
        if name == "cat":
            body += 'exec /bin/cat "$@"\n'
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    fields = log.read_bytes().split(b"\0")[:-1]
    out, i = [], 0
    while i < len(fields):
        n = int(fields[i])
        out.append([f.decode("utf-8", "surrogateescape") for f in fields[i + 1:i + 2 + n]])
        i += 2 + n
    return out


def syntax_ok(script: str, work: Path, shell: str = "bash") -> bool:
    path = work / "syntax.sh"
    path.write_bytes(script.encode("utf-8"))
    return subprocess.run([shell, "-n", str(path)], capture_output=True).returncode == 0


def run_script(script: str, work: Path, shell: str = "sh", extra_env: dict[str, str] | None = None) -> Run:
    """Run `script` in a fresh folder under `work` with only the stand-ins on PATH (and `extra_env`)."""
    bin_dir = stand_ins(work)
    cwd = work / f"run-{len(list(work.glob('run-*')))}"
    cwd.mkdir()
    (cwd / "launch.sh").write_bytes(script.encode("utf-8"))
    log = work / f"{cwd.name}.log"
    env = {"PATH": str(bin_dir), "PLANNER_TEST_LOG": str(log), "HOME": str(cwd), "LC_ALL": "C.UTF-8",
           **(extra_env or {})}
    res = subprocess.run([shutil.which(shell) or shell, "launch.sh"], cwd=cwd, env=env, capture_output=True,
                         timeout=30)
    new = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*") if p.name != "launch.sh")
    return Run(res.returncode, _calls(log), res.stdout.decode("utf-8", "replace"),
               res.stderr.decode("utf-8", "replace"), new)


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
