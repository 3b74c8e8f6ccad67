"""A corpus of bad inputs for every command: malformed files (catalog TOML, request TOML, config.json, plan JSON)
and bad flags. Each case says what the planner must do with it: exit 2 (bad input) or 1 (infeasible), one line
on stderr, no traceback, and (where it is pinned) name the file / field / problem.

Used by test_bad_input.py (CliRunner and a few subprocesses) and report.py (the README table)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# ---- valid bases the cases corrupt -------------------------------------------------------------------------------
CATALOG_OK = """\
[[accelerator]]
id = "my-gpu"
name = "My GPU"
memory_gib = 80
hbm_tb_s = 3.35
[accelerator.tflops]
bf16 = 989
fp8 = 1979
[accelerator.scale_up]
domain_size = 8
gb_s = 450
[accelerator.scale_out]
gbit_s = 400
[accelerator.prices.market]
usd_per_hour = 2.5
"""

REQUEST_OK = """\
model = "llama-3.1-8b"
gpus = ["h100-sxm"]
isl = 500
osl = 100
min_tokens_per_s_user = 20
"""

CONFIG_OK = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 1024, "num_hidden_layers": 8,
    "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 4096, "hidden_act": "silu",
    "vocab_size": 32000, "max_position_embeddings": 8192,
}
MOE_CONFIG_OK = {**CONFIG_OK, "num_local_experts": 8, "num_experts_per_tok": 2}

ESTIMATE = ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "8", "--isl", "100", "--osl", "50"]
PLAN = ["plan", "--model", "llama-3.1-8b", "--gpus", "h100", "--isl", "100", "--osl", "50"]
FRONTIER = ["frontier", "--model", "llama-3.1-8b", "--gpus", "h100", "--isl", "100", "--osl", "50",
            "--speeds", "20,50"]


@dataclass
class Case:
    kind: str  # flag | name | catalog | request | config | plan-json
    label: str
    argv: list[str]  # "{d}" stands for the case's folder
    files: dict[str, bytes] = field(default_factory=dict)
    codes: tuple[int, ...] = (2,)
    expect: tuple[str, ...] = ()  # substrings the error line must contain (case-insensitive)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.label}"

    def materialize(self, folder: Path) -> list[str]:
        for name, data in self.files.items():
            p = folder / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        return [a.replace("{d}", str(folder)) for a in self.argv]


def _b(s: str) -> bytes:
    return s.encode("utf-8")


def _with(base: list[str], flag: str, value: str | None) -> list[str]:
    """`base` with `flag` set to `value` (replacing it if present; value None removes the flag)."""
    out, i = [], 0
    while i < len(base):
        if base[i] == flag:
            i += 2
            continue
        out.append(base[i])
        i += 1
    return out if value is None else out + [flag, value]


def _set_toml(text: str, key: str, value: str | None) -> str:
    """Replace (or drop, value None) the first `key = ...` line; append it to the first table when absent."""
    pat = re.compile(rf"^{re.escape(key)} = .*$", re.M)
    if pat.search(text):
        return pat.sub("" if value is None else f"{key} = {value}", text, count=1)
    if value is None:
        return text
    lines = text.splitlines()
    # insert after the first line that opens or follows [[accelerator]] (or at the top of a flat file)
    at = 1 if lines and lines[0].startswith("[[") else 0
    lines.insert(at, f"{key} = {value}")
    return "\n".join(lines) + "\n"


# ---- flags --------------------------------------------------------------------------------------------------------
def flag_cases() -> list[Case]:
    cs: list[Case] = []
    bad_ints = [("zero", "0"), ("negative", "-3"), ("text", "abc"), ("float", "1.5"), ("huge", "9" * 40),
                ("empty", "")]
    for flag in ("--tp", "--pp", "--ep", "--batch", "--isl", "--osl"):
        for label, v in bad_ints:
            if label == "zero" and flag in ("--ep",):
                pass
            cs.append(Case("flag", f"estimate {flag} {label}", _with(ESTIMATE, flag, v), expect=(flag,)))
    for flag in ("--isl", "--osl", "--max-gpus"):
        for label, v in bad_ints:
            cs.append(Case("flag", f"plan {flag} {label}", _with(PLAN, flag, v), expect=(flag,)))
            cs.append(Case("flag", f"frontier {flag} {label}", _with(FRONTIER, flag, v), expect=(flag,)))
    bad_floats = [("zero", "0"), ("negative", "-1"), ("text", "fast"), ("nan", "nan"), ("inf", "inf"),
                  ("huge", "1e300"), ("empty", "")]
    for flag in ("--ttft-ms", "--tpot-ms", "--min-tokens-per-s-user", "--rate-rps", "--output-tokens-per-s",
                 "--time-limit-s"):
        for label, v in bad_floats:
            if flag == "--time-limit-s" and label in ("huge", "inf"):
                continue  # a very long limit is legitimate
            cs.append(Case("flag", f"plan {flag} {label}", _with(PLAN, flag, v), expect=(flag,)))
    for flag in ("--ttft-ms", "--rate-rps", "--time-limit-s"):
        for label, v in bad_floats:
            if flag == "--time-limit-s" and label in ("huge", "inf"):
                continue
            cs.append(Case("flag", f"frontier {flag} {label}", _with(FRONTIER, flag, v), expect=(flag,)))
    for label, v in bad_floats:
        cs.append(Case("flag", f"estimate --price {label}", _with(ESTIMATE, "--price", v), expect=("--price",)))
    for label, v in [("zero", "0"), ("too many", "99"), ("text", "x")]:
        cs.append(Case("flag", f"estimate --spec-gamma {label}",
                       _with(ESTIMATE, "--spec-draft", "llama-3.1-8b") + ["--spec-gamma", v], expect=("gamma",)))
    for label, v in [("one", "1"), ("negative", "-0.1"), ("nan", "nan"), ("text", "x")]:
        cs.append(Case("flag", f"estimate --spec-alpha {label}",
                       _with(ESTIMATE, "--spec-draft", "llama-3.1-8b") + ["--spec-alpha", v], expect=("alpha",)))
    cs += [
        Case("flag", "estimate tp above scale-up domain", _with(ESTIMATE, "--tp", "16"), expect=("scale-up", "16")),
        # L4 has no scale-up fabric: TP runs over PCIe inside one 8-GPU host, and no further
        Case("flag", "estimate tp above l4 host", _with(_with(ESTIMATE, "--gpu", "l4"), "--tp", "16"),
             expect=("PCIe", "16")),
        Case("flag", "estimate ep not dividing tp x dp", _with(ESTIMATE, "--ep", "3"), expect=("--ep",)),
        Case("flag", "estimate batch not a multiple of dp", _with(ESTIMATE, "--dp", "3"), expect=("--dp",)),
        Case("flag", "estimate tp not dividing heads", _with(ESTIMATE, "--tp", "3"), expect=("heads",)),
        Case("flag", "estimate pp above layers", _with(ESTIMATE, "--pp", "33"), expect=("--pp",)),
        Case("flag", "estimate ep on dense", _with(_with(ESTIMATE, "--tp", "2"), "--ep", "2"), expect=("--ep",)),
        Case("flag", "estimate ep not dividing tp", ["estimate", "--model", "mixtral-8x7b", "--gpu", "h100", "--tp",
                                                     "2", "--ep", "4", "--batch", "8", "--isl", "100", "--osl", "50"],
             expect=("--ep",)),
        Case("flag", "estimate weights unknown", _with(ESTIMATE, "--weights", "fp3"), expect=("--weights", "fp3")),
        Case("flag", "estimate kv unknown", _with(ESTIMATE, "--kv", "int4"), expect=("--kv", "int4")),
        Case("flag", "estimate weights unsupported", _with(_with(ESTIMATE, "--gpu", "a100-80gb"), "--weights", "fp8"),
             expect=("fp8",)),
        Case("flag", "estimate layers-per-stage text", _with(ESTIMATE, "--layers-per-stage", "a,b"),
             expect=("--layers-per-stage",)),
        Case("flag", "estimate layers-per-stage wrong sum", _with(_with(ESTIMATE, "--pp", "2"), "--layers-per-stage",
                                                                  "10,10"), expect=("32",)),
        Case("flag", "estimate layers-per-stage negative", _with(_with(ESTIMATE, "--pp", "2"), "--layers-per-stage",
                                                                 "-1,33"), expect=("layers",)),
        Case("flag", "estimate layers-per-stage wrong count", _with(ESTIMATE, "--layers-per-stage", "16,16"),
             expect=("layers",)),
        Case("flag", "estimate price tier unknown", _with(ESTIMATE, "--price-tier", "cheap"), expect=("--price-tier",)),
        Case("flag", "estimate missing --batch", _with(ESTIMATE, "--batch", None), expect=("--batch",)),
        Case("flag", "estimate unknown option", ESTIMATE + ["--tensor-parallel", "8"], expect=("--tensor-parallel",)),
        Case("flag", "unknown command", ["deploy", "--model", "x"], expect=("deploy",)),
        Case("flag", "unknown top-level option", ["--verbose", "plan"], expect=("--verbose",)),
        Case("flag", "plan missing --isl", _with(PLAN, "--isl", None), expect=("--isl",)),
        Case("flag", "plan missing --model", _with(PLAN, "--model", None), expect=("--model",)),
        Case("flag", "frontier missing --osl", _with(FRONTIER, "--osl", None), expect=("--osl",)),
        Case("flag", "plan contradictory SLOs", PLAN + ["--tpot-ms", "50", "--min-tokens-per-s-user", "40"],
             expect=("contradictory",)),
        Case("flag", "plan two demands", PLAN + ["--rate-rps", "2", "--output-tokens-per-s", "100"],
             expect=("--rate-rps",)),
        Case("flag", "plan --gpus empty", _with(PLAN, "--gpus", ","), expect=("--gpus",)),
        Case("flag", "plan --weights unknown", PLAN + ["--weights", "bf16,fp5"], expect=("fp5",)),
        Case("flag", "plan --kv unknown", PLAN + ["--kv", "fp4"], expect=("fp4",)),
        Case("flag", "plan --weights empty", PLAN + ["--weights", ","], expect=("--weights",)),
        Case("flag", "plan --max-gpus-per-type no =", PLAN + ["--max-gpus-per-type", "h100"],
             expect=("--max-gpus-per-type",)),
        Case("flag", "plan --max-gpus-per-type text", PLAN + ["--max-gpus-per-type", "h100=many"],
             expect=("--max-gpus-per-type",)),
        Case("flag", "plan --max-gpus-per-type negative", PLAN + ["--max-gpus-per-type", "h100=-2"],
             expect=("--max-gpus-per-type",)),
        Case("flag", "plan --max-gpus-per-type huge", PLAN + ["--max-gpus-per-type", "h100=" + "9" * 30],
             expect=("--max-gpus-per-type",)),
        Case("flag", "plan --max-gpus-per-type unknown gpu", PLAN + ["--max-gpus-per-type", "h1OO=8"],
             expect=("h1oo",)),
        Case("flag", "frontier --speeds text", _with(FRONTIER, "--speeds", "fast,slow"), expect=("--speeds",)),
        Case("flag", "frontier --speeds negative", _with(FRONTIER, "--speeds", "20,-5"), expect=("--speeds",)),
        Case("flag", "frontier --speeds nan", _with(FRONTIER, "--speeds", "nan"), expect=("--speeds",)),
        Case("flag", "frontier --speeds inf", _with(FRONTIER, "--speeds", "inf"), expect=("--speeds",)),
        Case("flag", "frontier --speeds empty", _with(FRONTIER, "--speeds", ","), expect=("--speeds",)),
        Case("flag", "plan request file missing", ["plan", "{d}/nope.toml"], expect=("nope.toml",)),
        Case("flag", "plan request file is a folder", ["plan", "{d}"], files={"x": b""}),
        Case("flag", "plan --catalog missing", PLAN + ["--catalog", "{d}/nope.toml"], expect=("nope.toml",)),
        # infeasible, not malformed: exit 1, one line per blocking constraint
        Case("flag", "plan unreachable speed", PLAN + ["--min-tokens-per-s-user", "100000"], codes=(1,),
             expect=("tok/s/user",)),
        Case("flag", "plan unreachable ttft", _with(PLAN, "--isl", "100000") + ["--ttft-ms", "1"], codes=(1,),
             expect=("ttft",)),
        Case("flag", "plan gpu limit", ["plan", "--model", "llama-3.1-405b", "--gpus", "l4", "--isl", "100", "--osl",
                                        "50", "--max-gpus", "2"], codes=(1,)),
        Case("flag", "frontier nothing reachable", _with(FRONTIER, "--speeds", "90000"), codes=(1,)),
    ]
    return cs


# ---- names ---------------------------------------------------------------------------------------------------------
def name_cases() -> list[Case]:
    cs = []
    for typo, right in [("h1000", "h100"), ("a100-80", "a100-80gb"), ("mi300", "mi300x"), ("tpu-v6", "tpu-v5"),
                        ("", ""), ("🚀", "")]:
        cs.append(Case("name", f"estimate --gpu {typo!r}", _with(ESTIMATE, "--gpu", typo),
                       expect=("unknown gpu",) + (("did you mean", right) if right else ())))
        cs.append(Case("name", f"plan --gpus {typo!r}", _with(PLAN, "--gpus", f"h200,{typo}" if typo else ""),
                       expect=("unknown gpu",) if typo else ("--gpus",)))
    for typo, right in [("llama-3.1-7b", "llama-3.1-8b"), ("mixtral-8x7", "mixtral-8x7b"), ("gpt5", ""),
                        ("deepseek-v4", "deepseek-v3")]:
        for base in (ESTIMATE, PLAN, FRONTIER):
            cs.append(Case("name", f"{base[0]} --model {typo}", _with(base, "--model", typo),
                           expect=("unknown model",) + (("did you mean", right) if right else ())))
    cs.append(Case("name", "estimate --spec-draft unknown", ESTIMATE + ["--spec-draft", "tiny-llama"],
                   expect=("unknown model",)))
    cs.append(Case("name", "estimate --model missing json", _with(ESTIMATE, "--model", "{d}/none.json"),
                   expect=("none.json",)))
    cs.append(Case("name", "estimate --model folder without config", _with(ESTIMATE, "--model", "{d}/m"),
                   files={"m/README": b"no config here"}, expect=("config.json",)))
    return cs


# ---- catalog TOML ----------------------------------------------------------------------------------------------------
def _catalog_variants() -> list[tuple[str, bytes, tuple[str, ...]]]:
    """(label, file bytes, expected substrings)."""
    c = CATALOG_OK
    v: list[tuple[str, bytes, tuple[str, ...]]] = []
    for key in ("memory_gib", "hbm_tb_s"):
        v.append((f"{key} missing", _b(_set_toml(c, key, None)), (key, "missing")))
        for label, val in [("negative", "-80"), ("zero", "0"), ("text", '"80GB"'), ("nan", "nan"), ("inf", "inf"),
                           ("huge", "1e300"), ("bool", "true"), ("array", "[80]"), ("tiny", "1e-300")]:
            v.append((f"{key} {label}", _b(_set_toml(c, key, val)), (key,)))
    for key in ("domain_size", "gb_s", "gbit_s"):
        for label, val in [("zero", "0"), ("negative", "-8"), ("text", '"eight"'), ("nan", "nan"), ("huge", "1e300"),
                           ("tiny", "1e-300")]:
            v.append((f"{key} {label}", _b(_set_toml(c, key, val)), (key,)))
        v.append((f"{key} missing", _b(_set_toml(c, key, None)), (key,)))
    v.append(("domain_size fractional", _b(_set_toml(c, "domain_size", "2.5")), ("domain_size",)))
    v.append(("domain_size beyond any cluster", _b(_set_toml(c, "domain_size", "100000000")), ("domain_size",)))
    for label, val in [("zero", "0"), ("negative", "-2.5"), ("text", '"cheap"'), ("nan", "nan"), ("huge", "1e300"),
                       ("tiny", "1e-300")]:
        v.append((f"usd_per_hour {label}", _b(_set_toml(c, "usd_per_hour", val)), ("usd_per_hour",)))
    for label, val in [("zero", "0"), ("negative", "-989"), ("text", '"989"'), ("tiny", "1e-300"), ("huge", "1e300")]:
        v.append((f"tflops bf16 {label}", _b(c.replace("bf16 = 989", f"bf16 = {val}")), ("bf16",)))
    v += [
        ("tflops unknown dtype", _b(c.replace("bf16 = 989", "bf17 = 989")), ("bf17",)),
        ("tflops empty", _b(c.replace("bf16 = 989\nfp8 = 1979\n", "")), ("tflops",)),
        ("tflops not a table", _b(c.replace("[accelerator.tflops]\nbf16 = 989\nfp8 = 1979\n", "tflops = 989\n")),
         ("tflops",)),
        ("scale_up missing", _b(c.replace("[accelerator.scale_up]\ndomain_size = 8\ngb_s = 450\n", "")),
         ("scale_up",)),
        ("prices missing", _b(c.replace("[accelerator.prices.market]\nusd_per_hour = 2.5\n", "")), ("price",)),
        ("price tier unknown", _b(c.replace("prices.market", "prices.cheapest")), ("cheapest",)),
        ("prices not a table", _b(c.replace("[accelerator.prices.market]\nusd_per_hour = 2.5\n", "prices = 2.5\n")),
         ("prices",)),
        ("price tier not a table", _b(c.replace("[accelerator.prices.market]\nusd_per_hour = 2.5\n",
                                                "[accelerator.prices]\nmarket = 2.5\n")), ("market",)),
        ("id missing", _b(_set_toml(c, "id", None)), ("id",)),
        ("id empty", _b(_set_toml(c, "id", '""')), ("id",)),
        ("id not a string", _b(_set_toml(c, "id", "7")), ("id",)),
        ("id with odd characters", _b(_set_toml(c, "id", '"my gpu/../x"')), ("id",)),
        ("aliases not a list", _b(_set_toml(c, "name", '"My GPU"\naliases = "mygpu"')), ("aliases",)),
        ("aliases of numbers", _b(_set_toml(c, "name", '"My GPU"\naliases = [1, 2]')), ("aliases",)),
        ("name not a string", _b(_set_toml(c, "name", "[1]")), ("name",)),
        ("topology not a string", _b(c.replace("gb_s = 450", "gb_s = 450\ntopology = 3")), ("topology",)),
        ("memory typo on a new entry", _b(c.replace("memory_gib", "memory_gb")), ("memory_gib",)),
        ("accelerator not an array", _b("accelerator = 3\n"), ("accelerator",)),
        ("accelerator entry not a table", _b("accelerator = [1, 2]\n"), ("accelerator",)),
        ("unknown top-level key", _b("acelerator = []\n" + c), ("acelerator",)),
        ("default_price_tier unknown", _b('default_price_tier = "free"\n' + c), ("free",)),
        ("default_price_tier not a string", _b("default_price_tier = 3\n" + c), ("default_price_tier",)),
        ("perf unknown parameter", _b(c + "[perf]\nhbm_eff = 0.5\n"), ("hbm_eff",)),
        ("perf efficiency above 1", _b(c + "[perf]\nhbm_efficiency = 1.5\n"), ("hbm_efficiency",)),
        ("perf efficiency zero", _b(c + "[perf]\nflops_efficiency = 0\n"), ("flops_efficiency",)),
        ("perf negative overhead", _b(c + "[perf]\nstep_overhead_s = -0.001\n"), ("step_overhead_s",)),
        ("perf huge overhead", _b(c + "[perf]\nstep_overhead_s = 1e300\n"), ("step_overhead_s",)),
        ("perf reserve 1", _b(c + "[perf]\nmemory_reserve_fraction = 1.0\n"), ("memory_reserve_fraction",)),
        ("perf max_batch zero", _b(c + "[perf]\nmax_batch = 0\n"), ("max_batch",)),
        ("perf max_batch fractional", _b(c + "[perf]\nmax_batch = 2.5\n"), ("max_batch",)),
        ("perf max_batch huge", _b(c + "[perf]\nmax_batch = 1000000000000\n"), ("max_batch",)),
        ("perf max_batched_tokens huge", _b(c + "[perf]\nmax_batched_tokens = 1000000000000000\n"),
         ("max_batched_tokens",)),
        ("perf text", _b(c + '[perf]\nhbm_efficiency = "high"\n'), ("hbm_efficiency",)),
        ("perf not a table", _b("perf = 3\n" + c), ("perf",)),
        ("override field negative", _b('[[accelerator]]\nid = "H100"\nusd_per_hour = -1\n'), ("usd_per_hour",)),
        ("override field text", _b('[[accelerator]]\nid = "h100-sxm"\nmemory_gib = "lots"\n'), ("memory_gib",)),
        ("override zero bandwidth", _b('[[accelerator]]\nid = "h100-sxm"\nhbm_tb_s = 0\n'), ("hbm_tb_s",)),
        ("truncated", _b(c[: len(c) // 2 + 7]), ("toml",)),
        ("truncated mid-string", _b('[[accelerator]]\nid = "my-g'), ("toml",)),
        ("not UTF-8", c.encode("utf-16"), ("utf-8",)),
        ("latin-1 byte", _b(c).replace(b"My GPU", b"My GPU \xe9"), ("utf-8",)),
        ("binary garbage", bytes(range(256)) * 4, ()),
        ("empty file of NULs", b"\x00" * 64, ()),
        ("json instead of toml", _b(json.dumps({"accelerator": [{"id": "x"}]})), ("toml",)),
        ("duplicate key", _b(c.replace("memory_gib = 80", "memory_gib = 80\nmemory_gib = 81")), ("toml",)),
        ("deeply nested", _b("x = " + "[" * 5000 + "]" * 5000 + "\n"), ()),
    ]
    return v


def catalog_cases() -> list[Case]:
    cs = []
    for label, data, expect in _catalog_variants():
        f = {"cat.toml": data}
        gpu = "h100" if label.startswith("override") else "my-gpu"  # use the entry, so that its numbers matter
        cs.append(Case("catalog", f"estimate {label}", _with(_with(ESTIMATE, "--gpu", gpu), "--catalog",
                                                             "{d}/cat.toml"), f, expect=("cat.toml",) + expect))
        cs.append(Case("catalog", f"plan {label}", _with(PLAN, "--gpus", gpu) + ["--catalog", "{d}/cat.toml"], f,
                       expect=("cat.toml",) + expect))
        cs.append(Case("catalog", f"frontier {label}", _with(FRONTIER, "--gpus", gpu) + ["--catalog", "{d}/cat.toml"],
                       f, expect=("cat.toml",)))
    return cs


# ---- request TOML ----------------------------------------------------------------------------------------------------
def _request_variants() -> list[tuple[str, bytes, tuple[str, ...], tuple[int, ...]]]:
    r = REQUEST_OK
    v: list[tuple[str, bytes, tuple[str, ...], tuple[int, ...]]] = []
    for key, bads in {
        "isl": [("zero", "0"), ("negative", "-5"), ("text", '"500"'), ("float", "500.5"), ("huge", "1" + "0" * 30),
                ("bool", "true"), ("array", "[500]")],
        "osl": [("zero", "0"), ("text", '"x"'), ("nan", "nan")],
        "min_tokens_per_s_user": [("zero", "0"), ("negative", "-20"), ("text", '"fast"'), ("nan", "nan"),
                                  ("inf", "inf"), ("huge", "1e300"), ("table", "{ x = 1 }")],
        "ttft_ms": [("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("text", '"1s"')],
        "tpot_ms": [("negative", "-30"), ("text", '"30ms"')],
        "rate_rps": [("negative", "-2"), ("nan", "nan"), ("inf", "inf"), ("text", '"2"')],
        "output_tokens_per_s": [("zero", "0"), ("huge", "1e300")],
        "max_gpus": [("zero", "0"), ("negative", "-8"), ("float", "8.5"), ("huge", "9" * 18), ("text", '"8"')],
        "time_limit_s": [("zero", "0"), ("negative", "-1"), ("nan", "nan"), ("text", '"30s"')],
        "gpus": [("number", "5"), ("unknown", '["h100", "z900"]'), ("empty list", "[]"), ("list of numbers", "[1, 2]"),
                 ("nested", '[["h100"]]')],
        "model": [("number", "5"), ("unknown", '"llama-9"'), ("list", '["llama-3.1-8b"]'),
                  ("missing json", '"nope/config.json"')],
        "weights": [("unknown", '["fp3"]'), ("number", "8"), ("empty", '""')],
        "kv": [("unknown", '"int4"'), ("number", "16")],
        "tp": [("zero", "[0]"), ("negative", "[-2]"), ("number", "8"), ("text", '["eight"]'), ("huge", "[10000000]"),
               ("float", "[2.5]"), ("empty", "[]")],
        "pp": [("zero", "[0]"), ("negative", "[-1]"), ("text", '"2"'), ("huge", "[1000000]"), ("empty", "[]")],
        "max_gpus_per_type": [("negative", "{ h100-sxm = -1 }"), ("text", '{ h100-sxm = "8" }'),
                              ("unknown gpu", "{ h999 = 8 }"), ("number", "8"), ("list", '["h100=8"]'),
                              ("huge", "{ h100-sxm = 999999999999999999 }")],
        "catalog": [("number", "5"), ("list", '["a.toml"]')],
        "price_tier": [("unknown", '"free"'), ("number", "1")],
        "description": [("number", "5")],
    }.items():
        for label, val in bads:
            codes = (2,)
            v.append((f"{key} {label}", _b(_set_toml(r, key, val)), (key,), codes))
    v += [
        ("isl missing", _b(_set_toml(r, "isl", None)), ("isl",), (2,)),
        ("model missing", _b(_set_toml(r, "model", None)), ("model",), (2,)),
        ("unknown key", _b(r + "batch = 8\n"), ("batch",), (2,)),
        ("misspelt key", _b(r + "ttft = 500\n"), ("ttft",), (2,)),
        ("contradictory SLOs", _b(r + "tpot_ms = 100\n"), ("contradictory",), (2,)),
        ("two demands", _b(r + "rate_rps = 1\noutput_tokens_per_s = 100\n"), ("rate",), (2,)),
        ("infeasible speed", _b(_set_toml(r, "min_tokens_per_s_user", "50000")), ("tok/s/user",), (1,)),
        ("tp above every scale-up domain", _b(r + "tp = [1024]\n"), ("scale-up",), (1,)),
        ("truncated", _b(r[: len(r) // 2 + 3]), ("toml",), (2,)),
        ("truncated mid-string", _b('model = "llama'), ("toml",), (2,)),
        ("not UTF-8", r.encode("utf-16"), ("utf-8",), (2,)),
        ("latin-1 byte", _b(r).replace(b"llama-3.1-8b", b"llama-3.1-8b\xff"), ("utf-8",), (2,)),
        ("binary garbage", bytes(range(256)), (), (2,)),
        ("empty", b"", ("model",), (2,)),
        ("yaml", _b("model: llama-3.1-8b\nisl: 500\n"), ("toml",), (2,)),
        ("duplicate key", _b(r + "isl = 600\n"), ("toml",), (2,)),
        ("deeply nested", _b("x = " + "[" * 5000 + "]" * 5000 + "\n"), (), (2,)),
        ("catalog relative file broken", _b(r + 'catalog = "cat.toml"\n'), ("cat.toml",), (2,)),
        ("catalog relative file missing", _b(r + 'catalog = "nope.toml"\n'), ("nope.toml",), (2,)),
        ("pp above the model's layers", _b(r + "pp = [64]\n"), ("no configuration",), (1,)),
    ]
    return v


def request_cases() -> list[Case]:
    cs = []
    for label, data, expect, codes in _request_variants():
        files = {"req.toml": data}
        if "catalog relative" in label:
            files["cat.toml"] = b"[[accelerator]\n"
        exp = expect if codes == (1,) or "contradictory" in label or "two demands" in label \
            or "catalog relative" in label else ("req.toml",) + expect
        cs.append(Case("request", f"plan {label}", ["plan", "{d}/req.toml"], files, codes, exp))
        if "SLO" in label or "speed" in label or "tpot_ms" in label:
            continue  # frontier sweeps the speed itself and ignores the file's speed target
        cs.append(Case("request", f"frontier {label}", ["frontier", "{d}/req.toml", "--speeds", "10,20"], files,
                       codes, () if codes == (1,) else exp[:1]))
    return cs


# ---- config.json -----------------------------------------------------------------------------------------------------
def _config_variants() -> list[tuple[str, bytes, tuple[str, ...]]]:
    def j(d) -> bytes:
        return _b(json.dumps(d))

    c = CONFIG_OK
    v: list[tuple[str, bytes, tuple[str, ...]]] = []
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"):
        v.append((f"{key} missing", j({k: x for k, x in c.items() if k != key}), (key,)))
        for label, val in [("zero", 0), ("negative", -4), ("text", "4096"), ("float", 1.5), ("huge", 10**30),
                           ("bool", True), ("list", [1]), ("object", {"a": 1})]:
            v.append((f"{key} {label}", j({**c, key: val}), (key,)))
    for key, val in [("num_key_value_heads", 5), ("num_key_value_heads", 32), ("num_key_value_heads", 0),
                     ("head_dim", -1), ("max_position_embeddings", 0), ("max_position_embeddings", "long"),
                     ("tie_word_embeddings", "yes"), ("hidden_act", 3)]:
        v.append((f"{key}={val!r}", j({**c, key: val}), (key,)))
    m = MOE_CONFIG_OK
    for key, val in [("num_local_experts", -8), ("num_local_experts", "eight"), ("num_local_experts", 1.5),
                     ("num_local_experts", 10**12), ("num_experts_per_tok", 0), ("num_experts_per_tok", 16),
                     ("num_experts_per_tok", "2"), ("n_shared_experts", -1), ("n_shared_experts", "one"),
                     ("moe_intermediate_size", -1), ("decoder_sparse_step", 0), ("mlp_only_layers", 3),
                     ("mlp_only_layers", ["a"]), ("first_k_dense_replace", -1), ("first_k_dense_replace", "one")]:
        v.append((f"moe {key}={val!r}", j({**m, key: val}), (key,)))
    v.append(("moe moe_layer_freq=0", j({**m, "first_k_dense_replace": 1, "moe_layer_freq": 0}), ("moe_layer_freq",)))
    v.append(("moe no intermediate for dense layers",
              j({**{k: x for k, x in m.items() if k != "intermediate_size"}, "moe_intermediate_size": 512,
                 "first_k_dense_replace": 1}), ("intermediate_size",)))
    mla = {**c, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128}
    for key, val in [("qk_rope_head_dim", None), ("qk_rope_head_dim", 0), ("v_head_dim", "x"), ("q_lora_rank", -1),
                     ("q_lora_rank", "x"), ("kv_lora_rank", -5)]:
        d = dict(mla)
        if val is None:
            d.pop(key)
        else:
            d[key] = val
        v.append((f"mla {key}={val!r}", j(d), (key,)))
    v += [
        ("text_config not an object", j({"text_config": [1, 2]}), ("text_config",)),
        ("top level list", j([c]), ("object",)),
        ("top level string", j("config"), ("object",)),
        ("empty object", j({}), ("hidden_size",)),
        ("NaN", _b(json.dumps(c)[:-1] + ', "hidden_size": NaN}'), ("hidden_size",)),
        ("Infinity", _b(json.dumps(c)[:-1] + ', "num_hidden_layers": Infinity}'), ("num_hidden_layers",)),
        ("1e400", _b(json.dumps(c)[:-1] + ', "vocab_size": 1e400}'), ("vocab_size",)),
        ("truncated", j(c)[:40], ("json",)),
        ("empty file", b"", ("json",)),
        ("not UTF-8", json.dumps(c).encode("utf-16"), ("utf-8",)),
        ("latin-1 byte", j({**c, "hidden_act": "silu"}).replace(b"silu", b"sil\xfc"), ("utf-8",)),
        ("trailing comma", _b(json.dumps(c)[:-1] + ",}"), ("json",)),
        ("binary garbage", bytes(range(256)), ()),
        ("deeply nested", _b("[" * 100000 + "]" * 100000), ()),
        ("toml instead of json", _b("hidden_size = 4096\n"), ("json",)),
    ]
    return v


def config_cases() -> list[Case]:
    cs = []
    for label, data, expect in _config_variants():
        files = {"m/config.json": data}
        cs.append(Case("config", f"estimate {label}", _with(ESTIMATE, "--model", "{d}/m/config.json"), files,
                       expect=("config.json",) + expect))
        cs.append(Case("config", f"plan {label}", _with(PLAN, "--model", "{d}/m"), files,
                       expect=("config.json",) + expect))
        cs.append(Case("config", f"frontier {label}", _with(FRONTIER, "--model", "{d}/m/config.json"), files,
                       expect=("config.json",)))
    return cs


# ---- plan JSON (for commands that read a plan: simulate / export, when present) ------------------------------------
def plan_json_variants(valid: bytes | None) -> list[tuple[str, bytes]]:
    v = [("empty file", b""), ("truncated", (valid or b'{"schema_version": 1, "model": "x"')[:37]),
         ("not UTF-8", (valid or b"{}").decode("utf-8").encode("utf-16")), ("top level list", b"[1, 2]"),
         ("empty object", b"{}"), ("binary garbage", bytes(range(256))), ("deeply nested", b"[" * 100000),
         ("schema_version 99", _b(json.dumps({"schema_version": 99}))), ("NaN", b'{"schema_version": NaN}')]
    if valid:
        d = json.loads(valid)
        for key in ("model", "gpu", "parallelism", "batch", "precision", "workload"):
            v.append((f"missing {key}", _b(json.dumps({k: x for k, x in d.items() if k != key}))))
        for key, val in [("gpu", "h1000"), ("model", "llama-9"), ("batch", "many"),
                         ("parallelism", {"tp": 0, "pp": 1, "ep": 1, "replicas": 1}),
                         ("parallelism", {"tp": 1024, "pp": 1, "ep": 1, "replicas": 1}),
                         ("precision", {"weights": "fp3", "kv": "bf16"}), ("placement", {"layers_per_stage": [1]}),
                         ("placement", {"layers_per_stage": "all"}), ("workload", {"isl": -1, "osl": 10}),
                         ("workload", {"isl": 100, "osl": 10, "rate_rps": "fast"})]:
            v.append((f"{key}={json.dumps(val)[:30]}", _b(json.dumps({**d, key: val}))))
    return v


# Cases that fail in code this suite's owner may not change; each is reported to that code's owner. The test marks
# them xfail (not strict, so a fix passes quietly) and report.py counts them apart.
KNOWN_FAILURES: dict[str, str] = {}


def all_cases(plan_commands: dict[str, Callable[[str], list[str]]] | None = None,
              valid_plan: bytes | None = None, extra_commands: tuple[str, ...] = ()) -> list[Case]:
    """Every case. `plan_commands` maps a command name to argv taking a plan file path (for commands that exist);
    `extra_commands` names other optional commands present (e.g. 'fleet')."""
    cs = flag_cases() + name_cases() + catalog_cases() + request_cases() + config_cases()
    existing = set(plan_commands or {}) | set(extra_commands)
    if "fleet" in existing:
        cs += fleet_cases()
    if "train" in existing:
        cs += train_cases()
    for c in export_flag_cases():
        if c.argv[0] in existing:
            c.files = c.files or {"plan.json": valid_plan or b"{}"}
            cs.append(c)
    for cmd, argv in (plan_commands or {}).items():
        for label, data in plan_json_variants(valid_plan):
            parse_level = not label.startswith(("missing", "gpu=", "model=", "parallelism=", "precision=",
                                                "placement=", "workload=", "batch="))
            cs.append(Case("plan-json", f"{cmd} {label}", argv("{d}/plan.json"), {"plan.json": data},
                           expect=("plan.json",) if parse_level else ()))
    return cs


# ---- fleet request TOML ([[class]] tables over an hourly profile) ---------------------------------------------------
FLEET_OK = """\
model = "llama-3.1-8b"
gpus = ["h100-sxm"]
time_limit_s = 5

[[class]]
name = "chat"
isl = 500
osl = 100
min_tokens_per_s_user = 20
rate_rps = 2
"""


def _fleet_variants() -> list[tuple[str, bytes, tuple[str, ...], tuple[int, ...]]]:
    f = FLEET_OK
    cls = f[f.index("[[class]]"):]
    top = f[:f.index("[[class]]")]
    v: list[tuple[str, bytes, tuple[str, ...], tuple[int, ...]]] = []
    for key, bads in {
        "isl": [("zero", "0"), ("negative", "-5"), ("text", '"500"'), ("huge", "1" + "0" * 30), ("float", "1.5")],
        "osl": [("zero", "0"), ("nan", "nan")],
        "min_tokens_per_s_user": [("zero", "0"), ("negative", "-1"), ("inf", "inf"), ("text", '"fast"')],
        "rate_rps": [("negative", "[-1, 2, 3]"), ("text", '"lots"'), ("nan", "nan"), ("empty list", "[]"),
                     ("two values", "[1, 2]"), ("nested", "[[1]]"), ("huge", "1e300")],
        "name": [("number", "5")],
        "model": [("unknown", '"llama-9"'), ("number", "5")],
        "gpus": [("unknown", '["h1000"]'), ("number", "5"), ("empty", "[]")],
        "time_limit_s": [("zero", "0"), ("negative", "-1"), ("text", '"5s"')],
    }.items():
        for label, val in bads:
            v.append((f"{key} {label}", _b(_set_toml(top, key, val) + _set_toml(cls, key, val)
                                           if key not in ("model", "gpus", "time_limit_s") else
                                           _set_toml(top, key, val) + cls), (key,), (2,)))
    v += [
        ("no class", _b(top), ("class",), (2,)),
        ("class not a table", _b(top + "class = 3\n"), ("class",), (2,)),
        ("unknown top-level key", _b("budget = 5\n" + f), ("budget",), (2,)),
        ("unknown class key", _b(f + "batch = 8\n"), ("batch",), (2,)),
        ("missing isl", _b(_set_toml(top, "x", None) + _set_toml(cls, "isl", None)), ("isl",), (2,)),
        ("available negative", _b(top + "[available]\nh100-sxm = -1\n" + cls), ("available",), (2,)),
        ("available unknown gpu", _b(top + "[available]\nh999 = 8\n" + cls), ("h999",), (2,)),
        ("prices not a table", _b(top + "prices = 3\n" + cls), ("prices",), (2,)),
        ("prices negative", _b(top + "[prices.h100-sxm]\nreserved = -2\n" + cls), ("reserved",), (2,)),
        ("unreachable speed", _b(_set_toml(top, "x", None) + _set_toml(cls, "min_tokens_per_s_user", "90000")),
         (), (1,)),
        ("truncated", _b(f[: len(f) // 2]), ("toml",), (2,)),
        ("not UTF-8", f.encode("utf-16"), ("utf-8",), (2,)),
        ("binary garbage", bytes(range(256)), (), (2,)),
        ("empty", b"", (), (2,)),
        ("deeply nested", _b("x = " + "[" * 5000 + "]" * 5000 + "\n"), (), (2,)),
    ]
    return v


# names resolved after the file is read: the error names the value, not yet the file (reported to fleet's owner)
_FLEET_NAME_LABELS = ("model unknown", "model number", "gpus unknown", "gpus empty", "available unknown gpu")


def fleet_cases() -> list[Case]:
    return [Case("fleet", f"fleet {label}", ["fleet", "{d}/fleet.toml"], {"fleet.toml": data}, codes,
                 (() if label in _FLEET_NAME_LABELS else ("fleet.toml",) + expect if codes == (2,)
                  and "nested" not in label else expect))
            for label, data, expect, codes in _fleet_variants()]


def export_flag_cases() -> list[Case]:
    return [
        Case("flag", "export --engine unknown", ["export", "{d}/plan.json", "--engine", "tgi"], expect=("--engine",)),
        Case("flag", "export --out is a file", ["export", "{d}/plan.json", "--out", "{d}/plan.json"],
             expect=("--out",)),
        Case("flag", "export plan file missing", ["export", "{d}/none.json"], expect=("none.json",)),
        Case("flag", "simulate plan file missing", ["simulate", "{d}/none.json"], expect=("none.json",)),
        Case("flag", "simulate --requests zero", ["simulate", "{d}/plan.json", "--requests", "0"],
             expect=("--requests",)),
        Case("flag", "simulate --rate-rps negative", ["simulate", "{d}/plan.json", "--rate-rps", "-1"],
             expect=("--rate-rps",)),
        Case("flag", "simulate --burstiness zero", ["simulate", "{d}/plan.json", "--burstiness", "0"],
             expect=("--burstiness",)),
        Case("flag", "fleet file missing", ["fleet", "{d}/none.toml"], expect=("none.toml",)),
    ] + [
        Case("flag", "fleet --time-limit-s zero", ["fleet", "{d}/fleet.toml", "--time-limit-s", "0"],
             {"fleet.toml": FLEET_OK.encode()}, expect=("time_limit_s",)),
        Case("flag", "fleet --catalog broken", ["fleet", "{d}/fleet.toml", "--catalog", "{d}/cat.toml"],
             {"fleet.toml": FLEET_OK.encode(), "cat.toml": b"[[accelerator]"}, expect=("cat.toml",)),
    ]


# ---- training requests (`planner train`: flags and TOML) -------------------------------------------------------------
TRAIN = ["train", "--model", "llama-3.1-8b", "--tokens", "1e10", "--gpus", "h100-sxm", "--max-gpus", "16",
         "--seq-len", "2048", "--global-batch-tokens", "65536", "--deadline-days", "30"]
TRAIN_OK = """\
model = "llama-3.1-8b"
tokens = 1e10
gpus = ["h100-sxm"]
max_gpus = 16
seq_len = 2048
global_batch_tokens = 65536
deadline_days = 30
"""


def train_cases() -> list[Case]:
    cs: list[Case] = []
    for flag, bads in {
        "--tokens": [("zero", "0"), ("negative", "-1"), ("text", "lots"), ("suffix only", "T"), ("nan", "nan"),
                     ("inf", "inf"), ("huge", "1e30"), ("empty", "")],
        "--seq-len": [("zero", "0"), ("float", "1.5"), ("text", "long"), ("huge", "1e12")],
        "--global-batch-tokens": [("not a multiple", "1000"), ("zero", "0"), ("over tokens", "2e10")],
        "--num-gpus": [("zero", "0"), ("negative", "-8"), ("float", "7.5")],
        "--max-gpus": [("zero", "0"), ("text", "many")],
        "--deadline-days": [("zero", "0"), ("negative", "-3"), ("nan", "nan"), ("inf", "inf"), ("text", "soon")],
        "--budget-usd": [("zero", "0"), ("nan", "nan")],
        "--price": [("zero", "0"), ("negative", "-2"), ("huge", "1e9")],
        "--goodput": [("zero", "0"), ("above one", "1.5"), ("nan", "nan")],
        "--flops-efficiency": [("zero", "0"), ("above one", "2")],
        "--price-tier": [("unknown", "cheap")],
        "--time-limit-s": [("zero", "0"), ("negative", "-1")],
        "--gpus": [("unknown", "h1000"), ("empty", ","), ("no bf16", "l4,h100-sxm,tpu-v4")],
        "--model": [("unknown", "llama-9"), ("missing file", "{d}/none.json")],
        "--catalog": [("missing", "{d}/none.toml")],
    }.items():
        for label, value in bads:
            codes = (0, 2) if label == "no bf16" else (2,)
            expect = () if flag in ("--gpus", "--model", "--catalog", "--price-tier") else (flag,)
            cs.append(Case("train", f"train {flag} {label}", _with(TRAIN, flag, value), codes=codes, expect=expect))
    cs += [
        Case("train", "train no limit", _with(TRAIN, "--deadline-days", None), expect=("--deadline-days",)),
        Case("train", "train num and max", TRAIN + ["--num-gpus", "8"], expect=("--num-gpus",)),
        Case("train", "train no model", [a for a in TRAIN if a not in ("--model", "llama-3.1-8b")],
             expect=("--model",)),
        Case("train", "train no tokens", _with(TRAIN, "--tokens", None), expect=("--tokens",)),
        Case("train", "train deadline unreachable", _with(TRAIN, "--deadline-days", "0.001"), codes=(1,)),
        Case("train", "train budget unreachable", _with(_with(TRAIN, "--deadline-days", None), "--budget-usd", "1"),
             codes=(1,)),
        Case("train", "train no such gpu count", _with(_with(TRAIN, "--max-gpus", None), "--num-gpus", "7"),
             codes=(1,)),
        Case("train", "train 405b on one gpu", _with(_with(_with(TRAIN, "--max-gpus", None), "--num-gpus", "1"),
                                                      "--model", "llama-3.1-405b"), codes=(1,)),
        Case("train", "train request missing", ["train", "{d}/none.toml"], expect=("none.toml",)),
    ]
    for key, bads in {
        "tokens": [("zero", "0"), ("text", '"lots"'), ("bool", "true"), ("table", "{ a = 1 }")],
        "seq_len": [("zero", "0"), ("text", '"2k"'), ("float", "2048.5")],
        "model": [("number", "5"), ("empty", '""'), ("unknown", '"llama-9"')],
        "gpus": [("number", "5"), ("empty", "[]"), ("unknown", '["h1000"]')],
        "deadline_days": [("negative", "-1"), ("text", '"soon"')],
        "max_gpus": [("zero", "0"), ("list", "[8]")],
        "price_tier": [("unknown", '"cheap"'), ("number", "3")],
        "catalog": [("missing", '"none.toml"')],
    }.items():
        for label, value in bads:
            named = key not in ("model", "gpus", "catalog") or label in ("number", "empty")
            cs.append(Case("train", f"train file {key} {label}", ["train", "{d}/t.toml"],
                           {"t.toml": _b(_set_toml(TRAIN_OK, key, value))},
                           expect=("t.toml",) + ((key,) if named else ())))
    cs += [
        Case("train", "train file unknown key", ["train", "{d}/t.toml"], {"t.toml": _b(TRAIN_OK + "tokns = 5\n")},
             expect=("t.toml", "tokns")),
        Case("train", "train file truncated", ["train", "{d}/t.toml"], {"t.toml": _b(TRAIN_OK[:40])},
             expect=("t.toml",)),
        Case("train", "train file not UTF-8", ["train", "{d}/t.toml"], {"t.toml": TRAIN_OK.encode("utf-16")},
             expect=("t.toml",)),
        Case("train", "train file binary", ["train", "{d}/t.toml"], {"t.toml": bytes(range(256))},
             expect=("t.toml",)),
        Case("train", "train file empty", ["train", "{d}/t.toml"], {"t.toml": b""}, expect=("--model",)),
    ]
    return cs


# ---- commands that read a plan file --------------------------------------------------------------------------------
VALID_PLAN_ARGV = PLAN + ["--rate-rps", "1", "--json"]  # the plan the plan-file cases corrupt
PLAN_FILE_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "simulate": lambda path: ["simulate", path, "--requests", "50"],
    "export": lambda path: ["export", path],
}


def plan_file_commands(group) -> dict[str, Callable[[str], list[str]]]:
    """The commands of `group` (the click group) that take a plan file and exist in this checkout."""
    return {name: argv for name, argv in PLAN_FILE_COMMANDS.items() if name in group.commands}


def problems(case: Case, exit_code: int, stdout: str, stderr: str) -> list[str]:
    """What is wrong with how the CLI answered `case` (empty when it answered as it must)."""
    out: list[str] = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if exit_code not in case.codes:
        out.append(f"exit code {exit_code}, want {' or '.join(map(str, case.codes))}")
    if "Traceback" in stderr or "Traceback" in stdout:
        out.append("traceback")
    if exit_code == 3 or any(line.startswith("internal error") for line in lines):
        out.append("internal error (a crash)")
    if exit_code == 2 and len(lines) != 1:
        out.append(f"{len(lines)} lines on stderr, want 1")
    if exit_code == 2 and stdout.strip():
        out.append("output on stdout next to an input error")
    time_limit = len(lines) == 1 and lines[0].startswith("error: time limit")
    if exit_code == 1 and not time_limit and (not lines or not all(line.startswith("infeasible:") for line in lines)):
        out.append("exit 1 without 'infeasible: ...' lines or one 'error: time limit' line")
    low = stderr.lower()
    missing = [e for e in case.expect if e.lower() not in low]
    if missing:
        out.append(f"error line lacks {missing}")
    return out


def crashed(exit_code: int, stdout: str, stderr: str) -> bool:
    """A crash: an internal error, a traceback, or an exit code the CLI does not define."""
    return (exit_code not in (0, 1, 2) or "Traceback" in stderr + stdout
            or any(line.startswith("internal error") for line in stderr.splitlines()))
