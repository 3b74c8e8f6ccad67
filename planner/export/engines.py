"""Launch commands for vLLM, SGLang and TensorRT-LLM from a resolved layout. Every flag goes through
`EngineSpec.arg`, so only flags recorded (with their source) in catalog/engines/<engine>.toml can appear."""
from __future__ import annotations

from typing import Any

from . import yaml
from .base import SERVE_PORT, Context, ShellRef, Export, floor2, header, layout_record, memory, resolve_layout
from .layout import Resolved
from .spec import dotted_keys

TRTLLM_OPTIONS_FILE = "extra-llm-api-options.yaml"


def _listed(spec, items: list[str]) -> list[str]:
    """A recorded flag list like ["--dtype", "bfloat16", "--quantization", "fp8"], each flag re-checked."""
    out, i = [], 0
    while i < len(items):
        if i + 1 < len(items) and not items[i + 1].startswith("-"):
            out += spec.arg(items[i], items[i + 1])
            i += 2
        else:
            out += spec.arg(items[i])
            i += 1
    return out


def weights_args(ctx: Context, res: Resolved) -> tuple[list[str], list[str]]:
    w = res.emitted.weights
    if w in ctx.spec.weights:
        return _listed(ctx.spec, list(ctx.spec.weights[w])), []
    return [], [f"{ctx.spec.engine} {ctx.spec.version} has no launch flag that quantizes weights to {w}: serve a "
                f"checkpoint already quantized to {w} (the engine reads its quantization config); the command loads "
                f"{ctx.model_ref}, point it at that checkpoint"]


def pp_env(ctx: Context, res: Resolved) -> dict[str, str]:
    lay = res.emitted
    if lay.pp == 1 or ctx.spec.layout.get("pp_partition") != "env":
        return {}
    return {ctx.spec.env_var(ctx.spec.layout["pp_partition_env"]): ",".join(str(n) for n in lay.layers_per_stage)}


def _fraction(mem: dict[str, float], *parts: str) -> float:
    cap = mem["capacity"]
    return (cap - sum(mem[p] for p in parts)) / cap


# ---- vLLM ------------------------------------------------------------------------------------------------------
def vllm_command(ctx: Context, res: Resolved, nodes: int = 1) -> tuple[list[str], dict[str, str], list[str]]:
    s, lay, mem = ctx.spec, res.emitted, memory(ctx, res)
    w_args, notes = weights_args(ctx, res)
    argv = list(s.command) + [ctx.model_arg]
    argv += s.arg("--served-model-name", ctx.served_name) + s.arg("--host", "0.0.0.0") + s.arg("--port", SERVE_PORT)
    argv += s.arg("--tensor-parallel-size", lay.tp) + s.arg("--pipeline-parallel-size", lay.pp)
    if lay.dp > 1:
        argv += s.arg("--data-parallel-size", lay.dp)
    if lay.ep > 1:
        argv += s.arg("--enable-expert-parallel")
    argv += w_args + s.arg("--kv-cache-dtype", s.kv[lay.kv])
    argv += s.arg("--max-num-seqs", lay.batch) + s.arg("--max-model-len", ctx.max_model_len)
    argv += s.arg("--max-num-batched-tokens", ctx.max_batched_tokens)
    # vLLM's budget covers weights, activations and KV: everything but the plan's runtime reserve
    argv += s.arg("--gpu-memory-utilization", floor2(_fraction(mem, "reserve")))
    if nodes > 1:
        argv += s.arg("--distributed-executor-backend", "ray")
    return argv, pp_env(ctx, res), notes


def export_vllm(ctx: Context) -> Export:
    res = resolve_layout(ctx)
    nodes = ctx_nodes(ctx, res)
    argv, env, notes = vllm_command(ctx, res, nodes)
    ex = _finish(ctx, res, argv, env, {}, notes, "vLLM launch")
    if nodes > 1:
        ray = ctx.spec.doc["ray"]
        ex.notes.append(f"one replica spans {nodes} nodes over a Ray cluster: run the node-N command on each other "
                        "node (HEAD_ADDR = this node's address), then this script on this node, which starts the "
                        "Ray head and vLLM")
        ex.pre_argv = [list(ray["head"])]
        worker = [ShellRef(a) if a.startswith("${") else a for a in ray["worker"]]
        ex.other_nodes = [{"node_rank": r, "argv": worker, "env": {}} for r in range(1, nodes)]
    return ex


# ---- SGLang ----------------------------------------------------------------------------------------------------
def sglang_command(ctx: Context, res: Resolved, nodes: int = 1, node_rank: Any = 0,
                   dist_init_addr: str | None = None) -> tuple[list[str], dict[str, str], list[str]]:
    s, lay, mem = ctx.spec, res.emitted, memory(ctx, res)
    w_args, notes = weights_args(ctx, res)
    argv = list(s.command) + s.arg("--model-path", ctx.model_arg) + s.arg("--served-model-name", ctx.served_name)
    argv += s.arg("--host", "0.0.0.0") + s.arg("--port", SERVE_PORT)
    # with DP attention SGLang's --tp-size counts every GPU of a stage and --dp-size splits it into groups
    argv += s.arg("--tp-size", lay.tp * lay.dp) + s.arg("--pp-size", lay.pp)
    if lay.dp > 1:
        argv += s.arg("--dp-size", lay.dp) + s.arg("--enable-dp-attention")
    if lay.ep > 1:
        argv += s.arg("--ep-size", lay.ep)
        if uses_two_batch_overlap(ctx):  # the plan's steps were timed with it (perf/step.py)
            argv += s.arg("--moe-a2a-backend", "deepep") + s.arg("--enable-two-batch-overlap")
    argv += w_args + s.arg("--kv-cache-dtype", s.kv[lay.kv])
    argv += s.arg("--max-running-requests", lay.batch)
    if lay.pp > 1:
        argv += s.arg("--pp-max-micro-batch-size", lay.micro_batch)
    argv += s.arg("--context-length", ctx.max_model_len) + s.arg("--chunked-prefill-size", ctx.max_batched_tokens)
    if ctx.plan.get("speculative"):
        # a separate draft model: STANDALONE, a chain of gamma draft tokens (top-k 1; gamma + 1 tokens verified,
        # as SGLang's own STANDALONE default (3, 1, 4) has it)
        gamma = ctx.plan["speculative"]["gamma"]
        argv += s.arg("--speculative-algorithm", "STANDALONE") + s.arg("--speculative-draft-model-path", ctx.draft_arg)
        argv += s.arg("--speculative-num-steps", gamma) + s.arg("--speculative-eagle-topk", 1)
        argv += s.arg("--speculative-num-draft-tokens", gamma + 1)
    # SGLang's static pool holds weights and KV; activations live outside it, the reserve is left free
    argv += s.arg("--mem-fraction-static", floor2(_fraction(mem, "reserve", "activations")))
    if nodes > 1:
        argv += s.arg("--dist-init-addr", dist_init_addr or ShellRef("${HEAD_ADDR}:20000"))
        argv += s.arg("--nnodes", nodes) + s.arg("--node-rank", node_rank)
    return argv, pp_env(ctx, res), notes


def export_sglang(ctx: Context) -> Export:
    res = resolve_layout(ctx)
    nodes = ctx_nodes(ctx, res)
    argv, env, notes = sglang_command(ctx, res, nodes)
    others = []
    if nodes > 1:
        notes.append(f"one replica spans {nodes} nodes: run the node-N command on each (HEAD_ADDR = node 0's "
                     "address)")
        for r in range(1, nodes):
            a, e, _ = sglang_command(ctx, res, nodes, r)
            others.append({"node_rank": r, "argv": a, "env": e})
    ex = _finish(ctx, res, argv, env, {}, notes, "SGLang launch")
    ex.other_nodes = others
    return ex


# ---- TensorRT-LLM ----------------------------------------------------------------------------------------------
def export_trtllm(ctx: Context) -> Export:
    s = ctx.spec
    res = resolve_layout(ctx)
    lay, mem = res.emitted, memory(ctx, res)
    _, notes = weights_args(ctx, res)
    if lay.weights not in s.weights:
        notes[-1] += " (e.g. one produced by NVIDIA ModelOpt)"
    # the fraction of memory free after weights and activations that the KV cache may take, leaving the reserve
    free = mem["capacity"] - mem["weights"] - mem["activations"]
    kv_fraction = floor2((free - mem["reserve"]) / free) if free > 0 else 0.0
    argv = list(s.command) + [ctx.model_arg]
    argv += s.arg("--host", "0.0.0.0") + s.arg("--port", SERVE_PORT) + s.arg("--backend", "pytorch")
    # attention DP (TP 1 per group, layout rule "tp1"): tp_size counts every GPU of a stage
    argv += s.arg("--tp_size", lay.tp * lay.dp) + s.arg("--pp_size", lay.pp)
    if lay.ep > 1:
        argv += s.arg("--ep_size", lay.ep)
    # With PP the executor keeps one batch of up to max_batch_size in flight per stage (pipeline micro-batches):
    # the plan's batch is pp micro-batches, so each gets its share (issue #17).
    max_batch = lay.micro_batch if lay.pp > 1 else lay.batch
    argv += s.arg("--max_batch_size", max_batch) + s.arg("--max_num_tokens", ctx.max_batched_tokens)
    argv += s.arg("--max_seq_len", ctx.max_model_len) + s.arg("--kv_cache_free_gpu_memory_fraction", kv_fraction)
    argv += s.arg("--extra_llm_api_options", TRTLLM_OPTIONS_FILE)
    options: dict[str, Any] = {
        "tensor_parallel_size": lay.tp * lay.dp, "pipeline_parallel_size": lay.pp,
    }
    if lay.dp > 1:
        options["enable_attention_dp"] = True
    if lay.ep > 1:
        options["moe_expert_parallel_size"] = lay.ep
        options["moe_tensor_parallel_size"] = lay.tp * lay.dp // lay.ep
    options.update({
        "max_batch_size": max_batch, "max_num_tokens": ctx.max_batched_tokens, "max_seq_len": ctx.max_model_len,
        "kv_cache_config": {"free_gpu_memory_fraction": kv_fraction,
                            # every sequence's KV at full context (the plan's sizing), and at least one sequence
                            # of the maximum length
                            "max_tokens": max(lay.batch * (ctx.plan["workload"]["isl"] + ctx.plan["workload"]["osl"]),
                                              ctx.max_model_len),
                            "dtype": s.kv[lay.kv]},
    })
    if ctx.max_model_len > ctx.max_batched_tokens:
        # without it TensorRT-LLM refuses every prompt longer than max_num_tokens (one step's token budget)
        options["enable_chunked_prefill"] = True
    if ctx.plan.get("speculative"):  # two-model draft/target speculation (catalog/engines/trtllm.toml)
        options["speculative_config"] = {"decoding_type": "DraftTarget",
                                         "max_draft_len": ctx.plan["speculative"]["gamma"],
                                         "speculative_model_dir": ctx.draft_arg}
        options["disable_overlap_scheduler"] = True
        notes.append(f"draft model for speculative decoding: speculative_model_dir {ctx.draft_arg} (a local folder "
                     "of its weights if this TensorRT-LLM build does not fetch Hugging Face ids)")
    for key in dotted_keys(options):
        if key not in s.yaml_keys:
            raise KeyError(f"trtllm: YAML key {key} is not in catalog/engines/trtllm.toml")
    nodes = ctx_nodes(ctx, res)
    if nodes > 1:
        notes.append(f"one replica spans {nodes} nodes ({lay.gpus} ranks): run this script inside a Slurm "
                     f"allocation of those {nodes} nodes; srun starts one rank per GPU")
    ex = _finish(ctx, res, argv, {}, {TRTLLM_OPTIONS_FILE: yaml.dump(options)}, notes, "TensorRT-LLM launch")
    if nodes > 1:
        fill = {"nodes": nodes, "ranks": lay.gpus, "per_node": lay.gpus // nodes}
        ex.launcher = [a.format(**fill) for a in s.doc["multinode"]["launcher"]]
    return ex


# ---- shared ----------------------------------------------------------------------------------------------------
def gpus_per_node(ctx: Context) -> int:
    from .spec import engine_spec

    table = engine_spec("k8s").doc.get("gpus_per_node", {})
    return int(table.get(ctx.gpu.id, min(8, max(1, ctx.gpu.scale_up_domain))))


def nodes_for(gpus: int, per_node: int, pp: int, tp: int) -> int:
    """Nodes one replica spans: the fewest n ≥ ⌈G / per-node⌉ that split its G GPUs evenly and, as SGLang needs,
    give each node whole pipeline stages or whole shares of one stage's TP group."""
    if gpus <= per_node:
        return 1
    for n in range(-(-gpus // per_node), gpus + 1):
        if gpus % n or gpus // n > per_node:
            continue
        if pp % n == 0 or (n % pp == 0 and tp % (n // pp) == 0):
            return n
    return -(-gpus // per_node)


def ctx_nodes(ctx: Context, res: Resolved) -> int:
    lay = res.emitted
    return nodes_for(lay.gpus, gpus_per_node(ctx), lay.pp, lay.tp * lay.dp)


def uses_two_batch_overlap(ctx: Context) -> bool:
    """The plan's figures assume two-batch overlap (perf_profile.two_batch_overlap)."""
    return (ctx.plan.get("perf_profile") or {}).get("two_batch_overlap") is True


def two_batch_overlap_notes(ctx: Context, res: Resolved) -> list[str]:
    """A note where the plan's step times assume two-batch overlap and this engine's launch does not turn it on
    (only SGLang's is exported with it)."""
    s = ctx.spec
    if s.engine == "sglang" or res.emitted.ep <= 1 or not uses_two_batch_overlap(ctx):
        return []
    return [f"the plan's MoE step times assume two-batch overlap (each step as two micro-batches, one's all-to-all "
            f"hidden behind the other's compute); this {s.engine} launch does not turn it on (no such flag recorded "
            f"in catalog/engines/{s.engine}.toml): expect slower steps, or re-plan with --two-batch-overlap off"]


def _finish(ctx: Context, res: Resolved, argv: list[str], env: dict[str, str], files: dict[str, str],
            notes: list[str], what: str) -> Export:
    s = ctx.spec
    notes = notes + two_batch_overlap_notes(ctx, res)
    return Export(engine=s.engine, version=s.version, docs=s.docs, argv=argv, env=env, files=files,
                  notes=ctx.notes + res.notes + notes, layout=layout_record(res), reestimate=res.reestimate,
                  header=header(ctx, res.emitted, what))
