"""Launch configurations for serving engines and clusters from a plan (`planner plan --json` output).

    import planner
    ex = planner.export(plan_dict, "vllm")      # or "sglang", "trtllm", "k8s"
    print(ex.script())                          # shell script (k8s: the manifest)
    ex.argv, ex.env, ex.files, ex.notes         # the pieces; ex.to_dict() for JSON

Flags are the engines' real ones for the versions recorded in catalog/engines/<engine>.toml (each with its
source). Where an engine cannot express the plan (uneven layers per stage on TensorRT-LLM, EP inside TP on vLLM,
a KV precision it lacks), the export says so in `notes`, emits the nearest layout it can, and re-estimates it
(`reestimate`) with planner.perf.estimate.

`planner.export(plan, engine)` (the package attribute is the API function, see planner/__init__.py) calls
`export` here."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import ENGINES, EngineSpec, engine_spec

if TYPE_CHECKING:
    from .base import Export
    from .disagg import DisaggExport


def export(plan: dict[str, Any], engine: str, *, model: Any = None, catalog: Any = None,
           price_tier: str | None = None, model_path: str | None = None, k8s_engine: str = "vllm",
           gpu_product: str | None = None, hf_token_secret: str | None = None,
           chat: bool | None = None) -> "Export | DisaggExport":
    """The launch configuration of `plan` for `engine` (vllm | sglang | trtllm | k8s).

    model: ModelSpec, preset id or config.json path, needed only when the plan's model is not a preset and the
    engine's layout differs from the plan (to re-estimate it). catalog / price_tier: the catalog the plan was made
    with (the GPU's specs; the plan's own price is kept). model_path: the weights to serve (default: the preset's
    Hugging Face repo). k8s_engine: the engine inside the pods for "k8s"; gpu_product: the node label value that
    pins its pods to the GPU (default: catalog/engines/k8s.toml [gpu_product]); hf_token_secret: the Secret holding
    HF_TOKEN (default "hf-token", optional). chat: serve the preset's instruct/chat checkpoint
    (catalog/models/chat.toml); None: when the plan says chat (`planner plan --chat`)."""
    from .base import check_plan, make_context
    from .engines import export_sglang, export_trtllm, export_vllm
    from .k8s import export_k8s

    from .draft import is_estimate, plan_from_estimate

    if hasattr(plan, "to_dict"):  # a planner.plan.Plan
        plan = plan.to_dict()
    from .disagg import export_disaggregated, is_disaggregated

    if is_disaggregated(plan):  # planner/disagg.py: a prefill and a decode pool, each exported as one layout
        return export_disaggregated(plan, engine, export, model=model, catalog=catalog, price_tier=price_tier,
                                    model_path=model_path, chat=plan.get("chat") is True if chat is None else chat)
    if is_estimate(plan):  # `planner estimate --json` output: one replica of its layout (with its draft model)
        plan = plan_from_estimate(plan)
    spec = engine_spec(engine)
    ctx = make_context(check_plan(plan), spec, model=model, catalog=catalog, price_tier=price_tier,
                       model_path=model_path, chat=chat)
    if engine == "vllm":
        return export_vllm(ctx)
    if engine == "sglang":
        return export_sglang(ctx)
    if engine == "trtllm":
        return export_trtllm(ctx)
    return export_k8s(ctx, k8s_engine, gpu_product=gpu_product, hf_token_secret=hf_token_secret)


def load_plan(path: str | Path) -> dict[str, Any]:
    from ..errors import InputError
    from ..files import read_json_object

    from .draft import is_estimate

    plan = read_json_object(Path(path), "the plan `planner plan --json` prints", allow_nan=False)
    if plan.get("schema_version") != 1 and not is_estimate(plan):
        raise InputError(f"{path}: plan schema_version {plan.get('schema_version')!r} is not supported (1)")
    return plan


def __getattr__(name: str) -> Any:
    if name == "Export":  # imported on first use: it pulls in the perf model (numpy)
        from .base import Export

        return Export
    raise AttributeError(name)


__all__ = ["export", "Export", "EngineSpec", "engine_spec", "ENGINES", "load_plan"]
