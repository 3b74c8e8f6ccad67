"""The shared part of every export: the plan's context (model, GPU, memory), the re-estimate of a changed layout,
and `Export`, the result (a launch command, its environment, config files and notes)."""
from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..catalog import CATALOG, Catalog, load_catalog, load_model, normalize_name, read_toml
from ..errors import InputError
from ..numbers import is_real, is_whole, round6, within
from ..perf.cost import usd_per_million_at
from ..perf.estimate import Config, SpecDecode, estimate
from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import MAX_TOKENS, Workload
from ..text import check_text, one_line
from .layout import Layout, Resolved, replicas_for_demand, resolve
from .spec import EngineSpec

# Where a model has no public checkpoint, the command names this path for the user to replace.
PLACEHOLDER_MODEL_DIR = "/models"
# vLLM's `vllm serve` and trtllm-serve listen on 8000, SGLang on 30000 by default; exports bind all interfaces on
# one port so the k8s Service and probes can use it.
SERVE_PORT = 8000


@dataclass
class Export:
    """A launch configuration for one engine. `argv` is the command (node 0 / the leader when a replica spans
    nodes), `env` its environment, `files` config files it reads (name -> text), `notes` what could not be
    expressed or needs the user's attention, `layout` what is emitted against what was planned."""

    engine: str
    version: str
    docs: str
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str]
    notes: list[str]
    layout: dict[str, Any]
    reestimate: dict[str, Any] | None = None
    other_nodes: list[dict[str, Any]] = field(default_factory=list)  # {"node_rank", "argv", "env"} per extra node
    pre_argv: list[list[str]] = field(default_factory=list)  # commands this node runs before argv (a Ray head)
    launcher: list[str] = field(default_factory=list)  # what runs argv across nodes (srun ... trtllm-llmapi-launch)
    header: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.layout["exact"]

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "version": self.version, "docs": self.docs, "argv": self.argv,
                "command": shlex.join(self.argv) if self.argv else None, "env": self.env, "files": self.files,
                "other_nodes": self.other_nodes, "pre_commands": self.pre_argv, "launcher": self.launcher,
                "notes": self.notes, "layout": self.layout,
                "reestimate": self.reestimate}

    def script(self) -> str:
        """A POSIX shell script (or, for k8s, the manifest) that a person reads and runs. Comment text goes through
        `one_line`, so a line break in a name cannot end the comment (in YAML, NEL/LS/PS break lines too)."""
        out = [_comment(line) for line in self.header]
        out += [_comment(f"NOTE: {n}") for n in self.notes]
        if self.reestimate:
            out.append(_comment(reestimate_line(self.reestimate)))
        if self.engine == "k8s":
            return "\n".join(out) + "\n" + self.files["manifest.yaml"]
        out = ["#!/bin/sh", "set -eu"] + out
        for name, text in self.files.items():
            end = _heredoc_end(text)
            out += [f"cat > {shlex.quote(name)} <<'{end}'", text.rstrip("\n"), end]
        for var in _shell_vars(self.argv):  # with set -u an unset one stops the script; say what it must hold
            out.append(f': "${{{var}:?set {var} to the address of node 0, the head of this replica}}"')
        if self.other_nodes:
            out.append("# node 0 (head):")
        out += [" ".join(_quote(a) for a in pre) for pre in self.pre_argv]
        out += _command_lines(self.env, self.launcher + self.argv, positional=len(self.launcher))
        for node in self.other_nodes:
            out.append(_comment(f"node {node['node_rank']}: "
                                + " ".join(f"{k}={_quote(v)}" for k, v in node["env"].items())
                                + (" " if node["env"] else "") + " ".join(_quote(a) for a in node["argv"])))
        return "\n".join(out) + "\n"


def _shell_vars(argv: list[str]) -> list[str]:
    """The variables the exporter's ShellRef arguments expand, in order."""
    names: list[str] = []
    for a in argv:
        m = _SHELL_REF.match(a) if isinstance(a, ShellRef) else None
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return names


def _comment(text: str) -> str:
    return f"# {one_line(text)}"


def _heredoc_end(text: str) -> str:
    """A here-document delimiter that no line of `text` equals."""
    lines, end = set(text.splitlines()), "EOF"
    while end in lines:
        end += "_"
    return end


class ShellRef(str):
    """An argument the launch script leaves to the shell to expand (`${HEAD_ADDR}:20000`): double-quoted where every
    other argument is single-quoted. Only exporters make one; user text never becomes one."""


_SHELL_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}[A-Za-z0-9_.:/-]*$")


def _quote(arg: str) -> str:
    """shlex quoting, except that a ShellRef (a ${VAR} reference the exporter wrote) is double-quoted so the shell
    expands it."""
    return f'"{arg}"' if isinstance(arg, ShellRef) and _SHELL_REF.match(arg) else shlex.quote(arg)


def reestimate_line(r: dict[str, Any]) -> str:
    m = r["metrics"]
    pct = lambda x: "n/a" if x is None else f"{x:+.1%}"  # noqa: E731
    return (f"re-estimate of the emitted layout (planner.perf.estimate): TTFT {m['ttft_s'] * 1000:.0f} ms "
            f"({pct(r['ttft_change'])}), TPOT {m['tpot_s'] * 1000:.1f} ms ({pct(r['tpot_change'])}), "
            f"${r['usd_per_million_output_tokens']:.4g}/M output tokens ({pct(r['cost_change'])} vs the plan), "
            f"{r['replicas']} replica(s), fits: {'yes' if r['fits'] else 'NO'}"
            + (f", misses: {'; '.join(r['violations'])}" if r["violations"] else ""))


def _command_lines(env: dict[str, str], argv: list[str], positional: int = 0) -> list[str]:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    # the command (after `positional` launcher words) and its positional arguments, then one flag (with its value)
    # per continued line
    i = positional + 1
    while i < len(argv) and not argv[i].startswith("--"):
        i += 1
    parts = [" ".join(_quote(a) for a in argv[:i])]
    while i < len(argv):
        chunk = [argv[i]]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            chunk.append(argv[i + 1])
            i += 1
        parts.append(" ".join(_quote(a) for a in chunk))
        i += 1
    lines.append(" \\\n  ".join(parts))
    return lines


def hf_repo(model_name: str) -> str | None:
    """The Hugging Face repo a preset was taken from (its `_planner_source` names it), if any."""
    path = CATALOG / "models" / f"{normalize_name(model_name)}.json"
    try:
        src = json.loads(path.read_text(encoding="utf-8")).get("_planner_source", "")
    except (OSError, ValueError):
        return None
    m = re.match(r"Hugging Face ([\w.\-]+/[\w.\-]+) config\.json", src)
    return m.group(1) if m else None


@lru_cache(maxsize=1)
def _chat_repos() -> dict[str, Any]:
    return dict(read_toml(CATALOG / "models" / "chat.toml", "catalog/models/chat.toml"))


def chat_repo(model_name: str, notes: list[str] | None = None) -> str | None:
    """The instruct/chat checkpoint of a preset (catalog/models/chat.toml), if one is recorded; else None, with a
    note saying the base checkpoint is served."""
    entry = _chat_repos().get(normalize_name(model_name))
    if entry is None and notes is not None:
        notes.append(f"no instruct/chat checkpoint is recorded for {model_name} (catalog/models/chat.toml): serving "
                     "its own checkpoint")
    return None if entry is None else entry["repo"]


@dataclass
class Context:
    """Everything an engine exporter reads besides the plan itself."""

    plan: dict[str, Any]
    spec: EngineSpec
    catalog: Catalog
    gpu: Accelerator
    model_ref: str
    model_spec: ModelSpec | None
    notes: list[str]
    # the user's text as it appears in the engine's argv; k8s escapes `$` there (planner/export/k8s.py)
    literal: Callable[[str], str] = str
    chat: bool = False  # serving instruct/chat checkpoints (the draft model's too)

    @property
    def served_name(self) -> str:
        return self.literal(self.plan["model"])

    @property
    def model_arg(self) -> str:
        return self.literal(self.model_ref)

    @property
    def draft_arg(self) -> str | None:
        """The draft model's weights (its Hugging Face repo, else a path to replace), when the plan has one."""
        sd = self.plan.get("speculative")
        if sd is None:
            return None
        ref = (chat_repo(sd["draft"]) if self.chat else None) or hf_repo(sd["draft"])
        if ref is None:
            ref = f"{PLACEHOLDER_MODEL_DIR}/{sd['draft']}"
            if not any(ref in n for n in self.notes):
                self.notes.append(f"draft model {sd['draft']} has no public checkpoint recorded: the command loads "
                                  f"{ref}; replace it with the draft's path or Hugging Face id")
        return self.literal(ref)

    @property
    def max_model_len(self) -> int:
        """The engine's maximum sequence length: the plan's workload.max_model_len (the user's --max-model-len or
        the model's context), else the model's context (plans written before it was recorded)."""
        w = self.plan["workload"]
        return Workload(isl=w["isl"], osl=w["osl"], max_model_len=w.get("max_model_len")).engine_max_len(
            self.model_spec)

    @property
    def max_batched_tokens(self) -> int:
        return int(self.catalog.perf.max_batched_tokens)


MAX_COUNT = 1 << 20  # GPUs, replicas, batch: beyond it a plan field is a typo or a corruption
MAX_BYTES = 1e15  # per GPU


def _num(d: Any, key: str, where: str, *, integer: bool = False, positive: bool = True,
         optional: bool = False, minimum: float | None = None, maximum: float | None = None) -> Any:
    v = d.get(key) if isinstance(d, dict) else None
    if v is None and optional and isinstance(d, dict):
        return None
    if maximum is None and integer:
        maximum = MAX_COUNT
    if not (is_whole(v) if integer else is_real(v)) or (v <= 0 if positive else v < 0):
        kind = "a positive integer" if integer and positive else ("a number > 0" if positive else "a number >= 0")
        raise InputError(f"plan: {where}{key} must be {kind}, got {v!r}")
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise InputError(f"plan: {where}{key} must be between {minimum or 0:g} and {maximum:g}, got {v!r}")
    return v


def _obj(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise InputError(f"plan: {key!r} must be an object, got {v!r}"[:200])
    return v


def check_plan(plan: Any) -> dict[str, Any]:
    """Validate the fields an export reads (the plan JSON is user input: it may be edited or truncated)."""
    from ..units import KV_PRECISIONS, WEIGHT_PRECISIONS

    if not isinstance(plan, dict):
        raise InputError("plan: must be the JSON object `planner plan --json` prints")
    if plan.get("schema_version") != 1:
        raise InputError(f"plan: schema_version {plan.get('schema_version')!r} is not supported (1)")
    for key in ("model", "gpu", "parallelism", "precision", "placement", "batch", "workload", "memory_per_gpu_bytes",
                "cost", "slo", "metrics"):
        if key not in plan:
            raise InputError(f"plan: missing field {key!r} (is it `planner plan --json` output?)")
    for key in ("model", "gpu"):
        if not isinstance(plan[key], str) or not plan[key].strip():
            raise InputError(f"plan: {key!r} must be a non-empty string, got {plan[key]!r}"[:200])
        check_text(plan[key], f"plan: {key!r}")
    if plan["model"].startswith("-"):  # it becomes --served-model-name's value
        raise InputError(f"plan: 'model' must not start with '-' (an engine would read it as a flag), got "
                         f"{plan['model']!r}"[:200])
    par = _obj(plan, "parallelism")
    for k in ("tp", "pp", "ep", "replicas"):
        _num(par, k, "parallelism.", integer=True)
    _num(par, "dp", "parallelism.", integer=True, optional=True)  # absent in plans written before DP existed
    if (par["tp"] * par.get("dp", 1)) % par["ep"]:
        raise InputError(f"plan: parallelism.ep {par['ep']} must divide tp x dp = {par['tp'] * par.get('dp', 1)}")
    _num(plan, "batch", "", integer=True)
    prec = _obj(plan, "precision")
    if prec.get("weights") not in WEIGHT_PRECISIONS or prec.get("kv") not in KV_PRECISIONS:
        raise InputError(f"plan: precision must have weights in {list(WEIGHT_PRECISIONS)} and kv in "
                         f"{list(KV_PRECISIONS)}, got {prec!r}"[:300])
    layers = _obj(plan, "placement").get("layers_per_stage")
    if (not isinstance(layers, list) or len(layers) != par["pp"]
            or any(not is_whole(n) or n < 1 for n in layers)):
        raise InputError(f"plan: placement.layers_per_stage must be {par['pp']} positive layer counts, "
                         f"got {layers!r}"[:200])
    w = _obj(plan, "workload")
    _num(w, "isl", "workload.", integer=True)
    _num(w, "osl", "workload.", integer=True)
    _num(w, "rate_rps", "workload.", positive=False, optional=True)
    _num(w, "output_tokens_per_s", "workload.", positive=False, optional=True)
    _num(w, "max_model_len", "workload.", integer=True, optional=True, maximum=MAX_TOKENS["isl"] + MAX_TOKENS["osl"])
    slo = _obj(plan, "slo")
    _num(slo, "ttft_s", "slo.", optional=True)
    _num(slo, "tpot_s", "slo.", optional=True)
    mem = _obj(plan, "memory_per_gpu_bytes")
    for k in ("weights", "kv_cache", "activations", "reserve", "total"):
        _num(mem, k, "memory_per_gpu_bytes.", positive=False, maximum=MAX_BYTES)
    _num(mem, "capacity", "memory_per_gpu_bytes.", minimum=2**20, maximum=MAX_BYTES)
    if mem["reserve"] >= mem["capacity"]:
        raise InputError("plan: memory_per_gpu_bytes.reserve must be below its capacity")
    cost = _obj(plan, "cost")
    _num(cost, "usd_per_hour_per_gpu", "cost.")
    _num(cost, "usd_per_million_output_tokens", "cost.", positive=False)
    met = _obj(plan, "metrics")
    _num(met, "ttft_s", "metrics.")
    _num(met, "tpot_s", "metrics.")
    from .draft import check_speculative

    check_speculative(plan)
    return plan


def check_layout(plan: dict[str, Any], gpu: Accelerator, model: ModelSpec | None) -> None:
    """The plan's layout must be buildable on its GPU (and model, when known): the checks `estimate` applies."""
    from ..perf.estimate import check_config

    par = plan["parallelism"]
    cfg = Config(gpu=gpu, tp=par["tp"], pp=par["pp"], ep=par["ep"], batch=plan["batch"],
                 weights=plan["precision"]["weights"], kv=plan["precision"]["kv"],
                 layers_per_stage=tuple(plan["placement"]["layers_per_stage"]), dp=par.get("dp", 1))
    if model is None:
        if gpu.intra_node_link(cfg.tp) is None:
            raise InputError(f"plan: tp {cfg.tp} exceeds {gpu.id}'s {gpu.node_gpus} GPUs on one scale-up domain "
                             "or PCIe host")
        return
    try:
        check_config(model, cfg)
    except InputError as e:
        raise InputError(f"plan: its layout cannot be built for {model.name} on {gpu.id}: {e}") from None


def make_context(plan: dict[str, Any], spec: EngineSpec, *, model: ModelSpec | str | None,
                 catalog: Catalog | str | None, price_tier: str | None, model_path: str | None,
                 chat: bool | None = None) -> Context:
    check_text(model_path, "model_path (--model-path)")
    if model_path and model_path.startswith("-"):
        raise InputError(f"model_path (--model-path) must not start with '-' (an engine would read it as a flag; "
                         f"write ./{model_path} for a relative path), got {model_path!r}"[:200])
    if isinstance(model, str):
        check_text(model, "model (--model)")
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog, price_tier=price_tier)
    gpu = cat.gpu(plan["gpu"])
    notes: list[str] = []
    if spec.vendors and gpu.vendor not in spec.vendors:
        notes.append(f"{spec.engine} {spec.version} does not run on {gpu.vendor} accelerators ({gpu.id}); the "
                     f"config below is what the plan would need, not something this engine can launch")
    model_spec = model if isinstance(model, ModelSpec) else None
    if isinstance(model, str):
        model_spec = load_model(model)
    if model_spec is None:
        try:
            model_spec = load_model(plan["model"])
        except InputError as e:
            # the model checks the layout (heads per TP rank, layers per stage) and re-estimates a changed one
            raise InputError(f"plan: {e}; pass the plan's model with model= (CLI --model: a preset, config.json "
                             "or model folder)") from None
    check_layout(plan, gpu, model_spec)
    w = plan["workload"]
    try:  # ISL + OSL within the engine's maximum length, and that within the model's context
        Workload(isl=w["isl"], osl=w["osl"], max_model_len=w.get("max_model_len")).engine_max_len(model_spec)
    except InputError as e:
        raise InputError(f"plan: {e}") from None
    local = None
    if isinstance(model, str) and ("/" in model or model.endswith(".json")):
        local = str(Path(model).parent) if model.endswith(".json") else model  # serve the folder holding config.json
    if chat is None:
        chat = plan.get("chat") is True  # the request said chat (`planner plan --chat`)
    ref = model_path or local or (chat_repo(plan["model"], notes) if chat else None) or hf_repo(plan["model"])
    if ref is None:
        ref = f"{PLACEHOLDER_MODEL_DIR}/{plan['model']}"
        notes.append(f"{plan['model']} has no public checkpoint recorded: the command loads {ref}; pass "
                     f"model_path= (CLI --model-path) with the weights' path or Hugging Face id")
    return Context(plan, spec, cat, gpu, ref, model_spec, notes, chat=chat)


def reestimator(ctx: Context):
    """Re-estimate a layout with planner.perf.estimate (the optimizer's model) at the plan's price."""
    plan = ctx.plan

    def run(lay: Layout) -> dict[str, Any]:
        if ctx.model_spec is None:
            try:
                ctx.model_spec = load_model(plan["model"])
            except InputError:
                raise InputError(f"export: the {ctx.spec.engine} layout differs from the plan and re-estimating it "
                                 f"needs the model: {plan['model']!r} is not a preset, pass model= (CLI --model) "
                                 "with its config.json or folder") from None
        sd = plan.get("speculative")
        spec = None if sd is None else SpecDecode(load_model(sd["draft"]), sd["gamma"], sd["alpha"])
        cfg = Config(gpu=ctx.gpu, tp=lay.tp, pp=lay.pp, ep=lay.ep, batch=lay.batch, weights=lay.weights, kv=lay.kv,
                     layers_per_stage=lay.layers_per_stage, dp=lay.dp, spec=spec,
                     usd_per_hour_per_gpu=plan["cost"]["usd_per_hour_per_gpu"])
        w = plan["workload"]
        e = estimate(ctx.model_spec, cfg, Workload(isl=w["isl"], osl=w["osl"]), ctx.catalog.perf)
        d = e.to_dict()
        slo = plan["slo"]
        violations = []
        if slo.get("ttft_s") is not None and not within(e.ttft_s, slo["ttft_s"]):
            violations.append(f"TTFT {e.ttft_s * 1000:.0f} ms > {slo['ttft_s'] * 1000:.0f} ms")
        if slo.get("tpot_s") is not None and not within(e.tpot_s, slo["tpot_s"]):
            violations.append(f"TPOT {e.tpot_s * 1000:.1f} ms > {slo['tpot_s'] * 1000:.1f} ms")
        replicas = replicas_for_demand(plan, e.output_tokens_per_s)
        usd_h = replicas * e.usd_per_hour
        demand = plan["workload"].get("output_tokens_per_s") or e.output_tokens_per_s * replicas
        cost = usd_per_million_at(usd_h, demand)
        planned = plan["cost"]["usd_per_million_output_tokens"]
        return {
            "layers_per_stage": list(e.layers_per_stage), "ep": lay.ep, "kv": lay.kv, "fits": e.fits,
            "metrics": d["metrics"], "memory_per_gpu_bytes": d["memory_per_gpu_bytes"], "replicas": replicas,
            "usd_per_hour": round6(usd_h), "usd_per_million_output_tokens": round6(cost),
            "cost_change": round6(cost / planned - 1.0) if planned else None,
            "tpot_change": round6(e.tpot_s / plan["metrics"]["tpot_s"] - 1.0),
            "ttft_change": round6(e.ttft_s / plan["metrics"]["ttft_s"] - 1.0),
            "violations": violations, "messages": list(e.messages), "bottleneck": e.bottleneck,
        }

    return run


def resolve_layout(ctx: Context) -> Resolved:
    res = resolve(ctx.plan, ctx.spec, reestimator(ctx))
    check_support(ctx, res.emitted)
    return res


def unsupported_rule(engine: str, gpu_id: str, lay: Layout) -> dict[str, Any] | None:
    """The rule of catalog/engines/support.toml that forbids running `lay` with `engine` on `gpu_id`, if any."""
    from .support import unsupported_rule as rule

    return rule(engine, gpu_id, lay.weights, lay.kv)


def check_support(ctx: Context, lay: Layout) -> None:
    """Refuse, in one line, a layout the engine cannot run on this GPU, naming the nearest one it can."""
    from .support import ENGINES_SERVING, runs_on

    from .support import features, unsupported_feature

    for feat in features(ctx.plan):
        frule = unsupported_feature(ctx.spec.engine, feat)
        if frule is not None:
            others = [e for e in ENGINES_SERVING if e != ctx.spec.engine and unsupported_feature(e, feat) is None]
            raise InputError(f"{ctx.spec.engine} {ctx.spec.version} cannot run this plan ({feat.replace('_', ' ')})"
                             f": {frule['reason']} [{frule['source']}]"
                             + (f"; export it with --engine {' or '.join(others)}" if others else ""))
    rule = unsupported_rule(ctx.spec.engine, ctx.gpu.id, lay)
    if rule is None:
        return
    nearest = rule.get("nearest", {"kv": "bf16"})
    near = replace(lay, **nearest)
    what = " and ".join(f"{v} weights" if k == "weights" else f"a {v} KV cache" for k, v in nearest.items())
    hint = ""
    if "kv" not in rule and "weights" not in rule:  # the whole architecture: name the engines that run the layout
        others = [e for e in ENGINES_SERVING if e != ctx.spec.engine and runs_on(e, ctx.gpu.id, lay.weights, lay.kv)]
        hint = f"; export it with --engine {' or '.join(others)}" if others else "; no pinned engine runs it"
    elif unsupported_rule(ctx.spec.engine, ctx.gpu.id, near) is None:
        r = reestimator(ctx)(near)
        m = r["metrics"]
        hint = (f"; nearest it runs: the same layout with {what} ({'fits' if r['fits'] else 'does NOT fit'}"
                f", TPOT {m['tpot_s'] * 1000:.1f} ms, ${r['usd_per_million_output_tokens']:.4g}/M output tokens, "
                f"{r['replicas']} replica(s)); re-plan with "
                + " ".join(f"--{k} {v}" for k, v in nearest.items()) + " for the cheapest one")
    raise InputError(f"{ctx.spec.engine} {ctx.spec.version} cannot run this plan on {ctx.gpu.id} ({lay.kv} KV cache, "
                     f"{lay.weights} weights): {rule['reason']} [{rule['source']}]{hint}")


def memory(ctx: Context, res: Resolved) -> dict[str, float]:
    """Memory per GPU of the emitted layout (the re-estimate's when it changed)."""
    return (res.reestimate or ctx.plan)["memory_per_gpu_bytes"]


def floor2(x: float) -> float:
    """Round a memory fraction down to 2 decimals: never hand the engine more than the plan budgeted."""
    return math.floor(x * 100 + 1e-9) / 100


def layout_record(res: Resolved) -> dict[str, Any]:
    return {"exact": res.exact, "planned": res.planned.to_dict(), "emitted": res.emitted.to_dict()}


def header(ctx: Context, lay: Layout, what: str) -> list[str]:
    p = ctx.plan
    return [f"{what} for {p['model']} on {ctx.gpu.id}: TP{lay.tp}{f' DP{lay.dp}' if lay.dp > 1 else ''} PP{lay.pp} "
            f"EP{lay.ep}, batch {lay.batch}, "
            f"weights {lay.weights}, KV {lay.kv}, layers per stage {list(lay.layers_per_stage)}, "
            f"{lay.replicas} replica(s) of {lay.gpus} GPU(s)",
            f"{ctx.spec.engine} {ctx.spec.version}; flags checked against catalog/engines/{ctx.spec.engine}.toml "
            f"({ctx.spec.docs})",
            "written by `planner export`"]
