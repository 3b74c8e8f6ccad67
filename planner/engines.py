"""Which serving engine can run what: the engine x GPU-architecture x precision x feature support matrix
(catalog/engines/support.toml), asked by the search (one cached predicate per row shape), by `plan` to name the
engine that runs its answer, and by the exports to refuse what an engine cannot run.

It lives here rather than in planner/export because the search needs it and the search must not import the
exporters (tests/test_imports.py: layers import downwards); planner/export/support.py builds its refusals on it.

Engines are tried in PREFERENCE order when the request names none: vLLM first (the default perf profile, CUDA, ROCm
and TPU images), then SGLang (CUDA and ROCm), then TensorRT-LLM (NVIDIA only)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from .catalog import CATALOG, read_toml
from .errors import InputError

ENGINES_SERVING = ("vllm", "sglang", "trtllm")  # the serving engines (k8s runs vLLM or SGLang in pods)
PREFERENCE = ENGINES_SERVING  # the order a plan without --engine names the engine that runs it
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}


@lru_cache(maxsize=1)
def support_matrix() -> Mapping[str, Any]:
    """catalog/engines/support.toml: GPU architectures and the engine x architecture x precision combinations the
    pinned engines cannot run."""
    return read_toml(CATALOG / "engines" / "support.toml", "catalog/engines/support.toml")


def check_engine(engine: str | None) -> str | None:
    """`engine` lower-cased and validated (None stays None: every engine)."""
    if engine is None:
        return None
    e = str(engine).strip().lower()
    if e not in ENGINES_SERVING:
        raise InputError(f"--engine must be one of {', '.join(ENGINES_SERVING)}, got {engine!r}")
    return e


def architecture(gpu_id: str) -> str | None:
    """The GPU's architecture (ampere, ada, hopper, blackwell, cdna3, tpu); None for a user-catalog part."""
    return support_matrix().get("architecture", {}).get(gpu_id)


def _engines(rule: dict[str, Any]) -> list[str]:
    return [rule["engine"]] if isinstance(rule["engine"], str) else list(rule["engine"])


@lru_cache(maxsize=None)
def engine_record(engine: str) -> Mapping[str, Any]:
    """catalog/engines/<engine>.toml: the pinned version, flags, and the planner precisions the engine maps."""
    return read_toml(CATALOG / "engines" / f"{engine}.toml", f"catalog/engines/{engine}.toml")


def kv_as_run(engine: str, kv: str) -> str:
    """The KV precision `engine` actually keeps for a planned `kv`: an engine without it (e.g. int8, which no
    pinned engine's KV-cache dtype choices offer) runs the nearest one of the same bytes its record names
    ([kv_nearest]: the export emits that one), so the matrix judges that one."""
    return engine_record(engine).get("kv_nearest", {}).get(kv, kv)


def unsupported_rule(engine: str, gpu_id: str, weights: str, kv: str) -> dict[str, Any] | None:
    """The first rule forbidding `engine` on `gpu_id` with these precisions (the KV cache as the engine runs it:
    `kv_as_run`); a rule without `weights`/`kv` covers every precision. None for a GPU the matrix does not know
    (no rule names it)."""
    rules = rules_for(engine, architecture(gpu_id), weights, kv)
    return rules[0][1] if rules else None


def rules_for(engine: str, arch: str | None, weights: str, kv: str) -> list[tuple[int, dict[str, Any]]]:
    """Every (index, rule) of support.toml [[unsupported]] forbidding `engine` on architecture `arch` with these
    precisions (the KV cache as the engine runs it), in the file's order."""
    run = kv_as_run(engine, kv)
    return [(i, rule) for i, rule in enumerate(support_matrix().get("unsupported", []))
            if engine in _engines(rule) and arch in rule.get("architectures", [])
            and run in rule.get("kv", [run]) and weights in rule.get("weights", [weights])]


def unsupported_feature(engine: str, feature: str) -> dict[str, Any] | None:
    for rule in support_matrix().get("unsupported_feature", []):
        if rule["engine"] == engine and rule["feature"] == feature:
            return rule
    return None


def runs_on(engine: str, gpu_id: str, weights: str, kv: str) -> bool:
    return _runs_on_arch(engine, architecture(gpu_id), weights, kv)


def layout_features(pp: int, ep: int, dp: int, draft: bool = False) -> tuple[str, ...]:
    """The support.toml features a row shape uses: pp (stages > 1), ep (expert parallel > 1), attention_dp (DP
    groups > 1 inside a replica), draft_model (speculative decoding with a separate draft) and draft_model_dp
    (that, with DP > 1)."""
    return tuple(f for f, used in (("pp", pp > 1), ("ep", ep > 1), ("attention_dp", dp > 1),
                                   ("draft_model", draft), ("draft_model_dp", draft and dp > 1)) if used)


def engines_for(gpu_id: str, weights: str, kv: str, tp: int, pp: int, ep: int, dp: int,
                draft: bool = False) -> tuple[str, ...]:
    """The engines (in PREFERENCE order) that run this row shape: its GPU architecture with these precisions, and
    every feature it uses. `tp` is part of the signature for rules to come; no pinned engine limits it today."""
    return engines_running(gpu_id, weights, kv, layout_features(pp, ep, dp, draft))


@lru_cache(maxsize=None)
def engines_running(gpu_id: str, weights: str, kv: str, features: tuple[str, ...]) -> tuple[str, ...]:
    """`engines_for` by what the answer depends on: the GPU (its architecture), the precisions and the features
    the shape uses (`layout_features`). Memoized: a search asks it for tens of thousands of shapes, which share a
    few hundred such keys."""
    arch = architecture(gpu_id)
    return tuple(e for e in PREFERENCE
                 if _runs_on_arch(e, arch, weights, kv) and not any(_feature_refused(e, f) for f in features))


@lru_cache(maxsize=None)
def _runs_on_arch(engine: str, arch: str | None, weights: str, kv: str) -> bool:
    """No support.toml rule forbids `engine` on architecture `arch` with these precisions: `runs_on` and
    `engines_running` ask it by what the answer depends on (the architecture, not the GPU id), so their keys (a
    few hundred per search; DeepSeek-V3 over every precision: ~810) share a few dozen scans of the rules."""
    return not rules_for(engine, arch, weights, kv)


@lru_cache(maxsize=None)
def _feature_refused(engine: str, feature: str) -> bool:
    return unsupported_feature(engine, feature) is not None


def row_supported(engine: str | None, gpu_id: str, weights: str, kv: str, tp: int, pp: int, ep: int,
                  dp: int, draft: bool = False) -> bool:
    """Whether `engine` (None: any engine) runs this row shape. Cached by shape: the search asks once per shape,
    not per micro-batch."""
    runs = engines_for(gpu_id, weights, kv, tp, pp, ep, dp, draft)
    return bool(runs) if engine is None else engine in runs


def version(engine: str) -> str:
    """The pinned version of `engine` (catalog/engines/<engine>.toml), the one the matrix and the exports describe."""
    return str(engine_record(engine)["version"])


def serving_engine(requested: str | None, gpu_id: str, weights: str, kv: str, tp: int, pp: int, ep: int,
                   dp: int, draft: bool = False) -> dict[str, Any]:
    """The engine a plan names: the requested one (the search kept only its rows), else the first in PREFERENCE
    order that runs the plan; with its version and every engine that runs the plan."""
    runs = engines_for(gpu_id, weights, kv, tp, pp, ep, dp, draft)
    if requested is not None:
        chosen, how = requested, "--engine"
    else:
        chosen, how = (runs[0] if runs else None), "preference order " + " > ".join(PREFERENCE)
    if chosen is None:  # the search keeps no such row; a plan built around the search must not get here
        raise ValueError(f"no engine runs {weights}/{kv} on {gpu_id}")
    return {"id": chosen, "name": ENGINE_NAMES[chosen], "version": version(chosen), "chosen_by": how,
            "engines_that_run_it": list(runs)}


def _kv_label(engine: str, kv: str) -> str:
    run = kv_as_run(engine, kv)
    return kv if run == kv else f"{kv} (run as {run})"


def exclusions(engine: str, shapes: Any, draft: bool = False) -> list[str]:
    """Why `engine` loses rows of a request whose (GPU id, weights, kv) combinations are `shapes` (and that
    speculates with a separate draft model when `draft`): one short line per matrix rule that applies (its
    precisions, GPUs and reason), in the order the rules are written; [] when it loses none."""
    hits: dict[int, list[tuple[str, str, str]]] = {}
    rules = support_matrix().get("unsupported", [])
    for g, w, k in shapes:
        for i, _ in rules_for(engine, architecture(g), w, k):
            hits.setdefault(i, []).append((g, w, k))
    out = []
    for i, combos in sorted(hits.items()):
        rule = rules[i]
        what = [*(["weights " + "/".join(dict.fromkeys(w for _, w, _ in combos))] if "weights" in rule else []),
                *(["KV " + "/".join(dict.fromkeys(_kv_label(engine, k) for _, _, k in combos))] if "kv" in rule else [])]
        on = ", ".join(dict.fromkeys(g for g, _, _ in combos))
        out.append(f"{' '.join(what) + ' on ' if what else ''}{on}: {rule['reason']}")
    rule = unsupported_feature(engine, "draft_model") if draft else None
    if rule is not None:
        out.append(f"a separate draft model: {rule['reason']}")
    return out


# ---- the matrix as a table: docs/engine-support.md (python tools/engine_support.py --write; a test checks it) ----
DOC_PATH = "docs/engine-support.md"
ARCHITECTURES = (("ampere", "Ampere"), ("ada", "Ada"), ("hopper", "Hopper"), ("blackwell", "Blackwell"),
                 ("cdna3", "CDNA3"), ("tpu", "TPU"))
FEATURES = (("pp", "pipeline parallel (PP > 1)"), ("ep", "expert parallel (EP > 1)"),
            ("attention_dp", "attention data parallel (DP > 1)"), ("chunked_prefill", "chunked prefill"),
            ("draft_model", "speculative decoding, separate draft model"),
            ("draft_model_dp", "speculative decoding, draft model with attention DP"),
            ("disaggregation", "prefill/decode disaggregation"))


def support_markdown() -> str:
    """The whole support matrix as Markdown: per engine, architecture x weight precision x KV precision, then
    features x engine; every "no" points at a footnote with the reason and its source."""
    from .units import KV_PRECISIONS, WEIGHT_PRECISIONS

    doc = support_matrix()
    notes: list[str] = []

    def note(rule: dict[str, Any]) -> str:
        line = f"{rule['reason']}. Source: {rule['source']}"
        if line not in notes:
            notes.append(line)
        return f"no [{notes.index(line) + 1}]"

    gpus = {a: [g for g, arch in doc.get("architecture", {}).items() if arch == a] for a, _ in ARCHITECTURES}
    out = ["# Engine support matrix", "",
           "Generated by `python tools/engine_support.py --write` from `catalog/engines/support.toml` and the engine",
           "records `catalog/engines/<engine>.toml`; do not edit by hand (`tests/test_engines.py` checks it is current).",
           "`plan`, `frontier` and the exports use the same matrix (`planner/engines.py`). \"yes\" means no sourced",
           "restriction is recorded for the pinned version; \"no [n]\" gives the reason and source in note n; \"as X\"",
           "means the engine has no such KV-cache dtype and the export emits X (same bytes per element), judged as X.",
           "The planner also skips precisions a GPU has no math for (`catalog/accelerators.toml`).", "",
           "Architectures: " + "; ".join(f"{name} ({', '.join(gpus[a]) or 'no catalog GPU'})"
                                         for a, name in ARCHITECTURES) + ".", ""]
    for e in ENGINES_SERVING:
        out += [f"## {ENGINE_NAMES[e]} {version(e)}: weights / KV cache by architecture", "",
                "| weights / KV | " + " | ".join(name for _, name in ARCHITECTURES) + " |",
                "|---|" + "---|" * len(ARCHITECTURES)]
        for w in WEIGHT_PRECISIONS:
            for k in KV_PRECISIONS:
                cells = []
                for a, _ in ARCHITECTURES:
                    rule = _rule_for_arch(e, a, w, k)
                    run = kv_as_run(e, k)
                    cells.append(note(rule) if rule else "yes" if run == k else f"as {run}")
                out.append(f"| {w} / {k} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Features by engine (on every architecture the engine serves above)", "",
            "| feature | " + " | ".join(f"{ENGINE_NAMES[e]} {version(e)}" for e in ENGINES_SERVING) + " |",
            "|---|" + "---|" * len(ENGINES_SERVING)]
    for f, label in FEATURES:
        cells = []
        for e in ENGINES_SERVING:
            rule = unsupported_feature(e, f) or (unsupported_feature(e, "draft_model") if f == "draft_model_dp" else None)
            supported = doc.get("features", {}).get(e, {}).get("supported", [])
            cells.append(note(rule) if rule else "yes" if f in supported or f == "draft_model_dp" else "not recorded")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    methods = [", ".join(x.split(":", 1)[1] for x in doc.get("features", {}).get(e, {}).get("supported", [])
                         if x.startswith("spec_decode:")) for e in ENGINES_SERVING]
    out += ["| speculative decoding methods | " + " | ".join(methods) + " |", "",
            "Feature sources: " + "; ".join(f"{ENGINE_NAMES[e]}: {doc['features'][e]['source']}"
                                            for e in ENGINES_SERVING if e in doc.get("features", {})) + ".", "",
            "## Notes", ""]
    out += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(out) + "\n"


def _rule_for_arch(engine: str, arch: str, weights: str, kv: str) -> dict[str, Any] | None:
    rules = rules_for(engine, arch, weights, kv)
    return rules[0][1] if rules else None


def main(argv: list[str] | None = None) -> int:
    """`python tools/engine_support.py [--write | --check]`: print the support matrix doc, write it to DOC_PATH (run
    from the repository root), or exit 1 when DOC_PATH is not current."""
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    text = support_markdown()
    if args == ["--write"]:
        Path(DOC_PATH).write_text(text, encoding="utf-8")
    elif args == ["--check"]:
        current = Path(DOC_PATH).read_text(encoding="utf-8") if Path(DOC_PATH).exists() else None
        if current != text:
            print(f"{DOC_PATH} is not current: run python tools/engine_support.py --write", file=sys.stderr)
            return 1
    elif not args:
        sys.stdout.write(text)
    else:
        print("usage: python tools/engine_support.py [--write | --check]", file=sys.stderr)
        return 2
    return 0

