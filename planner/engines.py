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


def unsupported_rule(engine: str, gpu_id: str, weights: str, kv: str) -> dict[str, Any] | None:
    """The first rule forbidding `engine` on `gpu_id` with these precisions; a rule without `weights`/`kv` covers
    every precision. None for a GPU the matrix does not know (no rule names it)."""
    arch = architecture(gpu_id)
    for rule in support_matrix().get("unsupported", []):
        if (engine in _engines(rule) and arch in rule.get("architectures", [])
                and kv in rule.get("kv", [kv]) and weights in rule.get("weights", [weights])):
            return rule
    return None


def unsupported_feature(engine: str, feature: str) -> dict[str, Any] | None:
    for rule in support_matrix().get("unsupported_feature", []):
        if rule["engine"] == engine and rule["feature"] == feature:
            return rule
    return None


def runs_on(engine: str, gpu_id: str, weights: str, kv: str) -> bool:
    return unsupported_rule(engine, gpu_id, weights, kv) is None


def layout_features(pp: int, ep: int, dp: int, draft: bool = False) -> tuple[str, ...]:
    """The support.toml features a row shape uses: pp (stages > 1), ep (expert parallel > 1), attention_dp (DP
    groups > 1 inside a replica), draft_model (speculative decoding with a separate draft) and draft_model_dp
    (that, with DP > 1)."""
    return tuple(f for f, used in (("pp", pp > 1), ("ep", ep > 1), ("attention_dp", dp > 1),
                                   ("draft_model", draft), ("draft_model_dp", draft and dp > 1)) if used)


@lru_cache(maxsize=4096)
def engines_for(gpu_id: str, weights: str, kv: str, tp: int, pp: int, ep: int, dp: int,
                draft: bool = False) -> tuple[str, ...]:
    """The engines (in PREFERENCE order) that run this row shape: its GPU architecture with these precisions, and
    every feature it uses. `tp` is part of the key for rules to come; no pinned engine limits it today."""
    feats = layout_features(pp, ep, dp, draft)
    return tuple(e for e in PREFERENCE
                 if runs_on(e, gpu_id, weights, kv) and not any(unsupported_feature(e, f) for f in feats))


def row_supported(engine: str | None, gpu_id: str, weights: str, kv: str, tp: int, pp: int, ep: int,
                  dp: int, draft: bool = False) -> bool:
    """Whether `engine` (None: any engine) runs this row shape. Cached by shape: the search asks once per shape,
    not per micro-batch."""
    runs = engines_for(gpu_id, weights, kv, tp, pp, ep, dp, draft)
    return bool(runs) if engine is None else engine in runs


@lru_cache(maxsize=None)
def version(engine: str) -> str:
    """The pinned version of `engine` (catalog/engines/<engine>.toml), the one the matrix and the exports describe."""
    return str(read_toml(CATALOG / "engines" / f"{engine}.toml", f"catalog/engines/{engine}.toml")["version"])


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


def exclusions(engine: str, shapes: Any, draft: bool = False) -> list[str]:
    """Why `engine` loses rows of a request whose (GPU id, weights, kv) combinations are `shapes` (and that
    speculates with a separate draft model when `draft`): one short line per matrix rule that applies (its
    precisions, GPUs and reason), in the order the rules are written; [] when it loses none."""
    hits: dict[int, list[tuple[str, str, str]]] = {}
    rules = support_matrix().get("unsupported", [])
    for g, w, k in shapes:
        arch = architecture(g)
        for i, rule in enumerate(rules):
            if (engine in _engines(rule) and arch in rule.get("architectures", [])
                    and k in rule.get("kv", [k]) and w in rule.get("weights", [w])):
                hits.setdefault(i, []).append((g, w, k))
    out = []
    for i, combos in sorted(hits.items()):
        rule = rules[i]
        what = [*(["weights " + "/".join(dict.fromkeys(w for _, w, _ in combos))] if "weights" in rule else []),
                *(["KV " + "/".join(dict.fromkeys(k for _, _, k in combos))] if "kv" in rule else [])]
        on = ", ".join(dict.fromkeys(g for g, _, _ in combos))
        out.append(f"{' '.join(what) + ' on ' if what else ''}{on}: {rule['reason']}")
    rule = unsupported_feature(engine, "draft_model") if draft else None
    if rule is not None:
        out.append(f"a separate draft model: {rule['reason']}")
    return out
