"""The engine x GPU support matrix (catalog/engines/support.toml): which weight/KV precisions on which GPU
architecture the pinned engines cannot run. `check` answers for a plan (or a bare layout) and one engine; exports
refuse what it reports (planner/export/base.py check_support)."""
from __future__ import annotations

from typing import Any

from ..errors import InputError
from .spec import support_matrix

ENGINES_SERVING = ("vllm", "sglang", "trtllm")  # the serving engines (k8s runs vLLM or SGLang in pods)


def architecture(gpu_id: str) -> str | None:
    return support_matrix().get("architecture", {}).get(gpu_id)


def unsupported_rule(engine: str, gpu_id: str, weights: str, kv: str) -> dict[str, Any] | None:
    """The first rule forbidding `engine` on `gpu_id` with these precisions; a rule without `weights`/`kv` covers
    every precision."""
    arch = architecture(gpu_id)
    for rule in support_matrix().get("unsupported", []):
        if (rule["engine"] == engine and arch in rule.get("architectures", [])
                and kv in rule.get("kv", [kv]) and weights in rule.get("weights", [weights])):
            return rule
    return None


def runs_on(engine: str, gpu_id: str, weights: str, kv: str) -> bool:
    return unsupported_rule(engine, gpu_id, weights, kv) is None


def check(plan_or_layout: Any, engine: str) -> list[str]:
    """Why `engine` cannot run this plan (a plan dict: `planner plan --json` / `estimate --json` output) or layout
    (anything with gpu, weights, kv attributes or keys), one line per reason with its source; [] when it can."""
    if engine not in ENGINES_SERVING:
        raise InputError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES_SERVING)})")
    gpu, weights, kv = _fields(plan_or_layout)
    if architecture(gpu) is None:
        return []  # a user-catalog accelerator: no rule can name it
    rule = unsupported_rule(engine, gpu, weights, kv)
    return [] if rule is None else [f"{engine} cannot run {weights} weights with a {kv} KV cache on {gpu}: "
                                    f"{rule['reason']} [{rule['source']}]"]


def _fields(p: Any) -> tuple[str, str, str]:
    if isinstance(p, dict):
        prec = p.get("precision") if isinstance(p.get("precision"), dict) else p
        gpu = p.get("gpu")
        return (gpu.get("id") if isinstance(gpu, dict) else gpu), prec.get("weights"), prec.get("kv")
    gpu = getattr(p, "gpu", None)
    return getattr(gpu, "id", gpu), getattr(p, "weights"), getattr(p, "kv")
