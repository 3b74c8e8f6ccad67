"""Random mutations of valid input files (truncation, byte flips, inserted garbage, deleted or duplicated lines,
numbers swapped for extreme values) fed to the commands that read them. Whatever the mutation, the CLI must not
crash: exit 0 (the file is still valid), 1 (infeasible, or the time limit) or 2 (one line naming the problem)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from hypothesis import strategies as st

from .cases import CATALOG_OK, CONFIG_OK, ESTIMATE, FRONTIER, MOE_CONFIG_OK, PLAN, REQUEST_OK, TRAIN_OK, Case, \
    _with

EXTREMES = ["0", "-1", "1e308", "-1e308", "nan", "inf", "1e-308", "99999999999999999999", "0.5", '"x"', "[]", "{}",
            "true", "-0", "3.14159", "1e9", "2147483648"]


@dataclass(frozen=True)
class Target:
    name: str
    file: str  # file name inside the case folder
    base: bytes
    argv: Callable[[str], list[str]]  # argv given the file's path


TARGETS = [
    Target("catalog TOML (estimate)", "cat.toml", CATALOG_OK.encode(),
           lambda p: _with(ESTIMATE, "--gpu", "my-gpu") + ["--catalog", p]),
    Target("catalog TOML (plan)", "cat.toml", CATALOG_OK.encode(),
           lambda p: _with(PLAN, "--gpus", "my-gpu,h100") + ["--catalog", p, "--time-limit-s", "5"]),
    Target("request TOML (plan)", "req.toml", REQUEST_OK.encode(), lambda p: ["plan", p, "--time-limit-s", "5"]),
    Target("request TOML (frontier)", "req.toml", REQUEST_OK.encode(),
           lambda p: ["frontier", p, "--speeds", "10,40", "--time-limit-s", "5"]),
    Target("config.json (estimate)", "config.json", json.dumps(CONFIG_OK, indent=1).encode(),
           lambda p: _with(ESTIMATE, "--model", p)),
    Target("config.json (plan)", "config.json", json.dumps(MOE_CONFIG_OK, indent=1).encode(),
           lambda p: _with(PLAN, "--model", p) + ["--time-limit-s", "5"]),
    Target("config.json (frontier)", "config.json", json.dumps(CONFIG_OK, indent=1).encode(),
           lambda p: _with(FRONTIER, "--model", p) + ["--time-limit-s", "5"]),
    Target("training request TOML (train)", "t.toml", TRAIN_OK.encode(), lambda p: ["train", p, "--time-limit-s", "5"]),
]


def plan_file_targets(commands: dict[str, Callable[[str], list[str]]], valid_plan: bytes) -> list[Target]:
    return [Target(f"plan JSON ({name})", "plan.json", valid_plan, argv) for name, argv in commands.items()]


@st.composite
def mutated(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for op in draw(st.lists(st.sampled_from(["truncate", "flip", "insert", "delete-line", "dup-line", "number",
                                             "number", "number"]), min_size=1, max_size=3)):
        if op == "truncate" and data:
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"[", b"]", b"{", b'"', b"=", b"\n",
                                                                                   b"\xff", b"\x00", b",", b"#"]))
        elif op in ("delete-line", "dup-line"):
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [] if op == "delete-line" else [lines[i], lines[i]]
            data = bytearray(b"\n".join(lines))
        elif op == "number":
            nums = list(re.finditer(rb"-?\d+(\.\d+)?(e-?\d+)?", bytes(data)))
            if nums:
                m = nums[draw(st.integers(0, len(nums) - 1))]
                data[m.start():m.end()] = draw(st.sampled_from(EXTREMES)).encode()
    return bytes(data)


def fuzz_case(target: Target, data: bytes) -> Case:
    """A Case for the mutated file: any exit in 0..2, judged by cases.problems()."""
    return Case("fuzz", target.name, target.argv("{d}/" + target.file), {target.file: data}, codes=(0, 1, 2))
