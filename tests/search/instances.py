"""Small random search instances for the property tests: models with 4..12 layers (dense and MoE, built directly
as `ModelSpec` or through `model_from_config`), one to three GPU types from the shipped catalog (some with random
price, memory and bandwidth), random ISL/OSL, SLOs, demand and GPU limits, and small pp / micro-batch sets, so
that the exhaustive oracle enumerates every (row, placement) in well under a second."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from planner.catalog import load_catalog
from planner.search.oracle import exact_space_table
from planner.search.space import Request, enumerate_rows
from planner.search.table import Limits, Table, build_table
from planner.specs.accelerator import Price
from planner.specs.model import LayerKind, ModelSpec, model_from_config
from planner.specs.workload import SLO, Workload

CATALOG = load_catalog()
GPU_IDS = sorted(CATALOG.accelerators)
MAX_ROWS = 160  # keeps one oracle run (rows × compositions of <= 12 layers into <= 4 stages) well under a second

GiB = 2**30

# What every property test over these instances runs under (each sets its own max_examples): the same examples on
# every run, no deadline (an oracle run takes up to a second), and no health check for slow or filtered draws
INSTANCES = settings(deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def models(draw, multi_kind: bool = False) -> ModelSpec:
    """A random model; `multi_kind`: one of several layer kinds (perf.step.kind_models), dense-first or interleaved
    dense/MoE layers and/or sliding-window layers alternating with full attention."""
    layers = draw(st.integers(4, 12))
    heads = draw(st.sampled_from([4, 8, 16, 32]))
    head_dim = draw(st.sampled_from([32, 64, 128]))
    hidden = heads * head_dim * draw(st.sampled_from([1, 2]))
    kv_heads = draw(st.sampled_from([k for k in (1, 2, 4, heads) if heads % k == 0]))
    vocab = draw(st.sampled_from([8000, 32000, 128256]))
    moe = draw(st.booleans())
    via_config = draw(st.booleans()) and not multi_kind
    if via_config:
        cfg = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
               "num_key_value_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab,
               "max_position_embeddings": 8192, "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
               "intermediate_size": hidden * draw(st.integers(2, 4)),
               "tie_word_embeddings": draw(st.booleans())}
        if moe:
            cfg["num_local_experts"] = draw(st.sampled_from([4, 8, 16]))
            cfg["num_experts_per_tok"] = draw(st.integers(1, min(4, cfg["num_local_experts"])))
        return model_from_config(cfg, name="random-config")
    kwargs = {}
    dense_ff = hidden * draw(st.integers(2, 4))
    dense_layers = layers
    if moe:
        experts = draw(st.sampled_from([4, 8, 16]))
        kwargs = dict(num_experts=experts, experts_per_token=draw(st.integers(1, min(4, experts))),
                      expert_intermediate_size=hidden * draw(st.integers(1, 3)),
                      num_shared_experts=draw(st.integers(0, 1)))
        kwargs["shared_expert_intermediate_size"] = kwargs["expert_intermediate_size"] if kwargs["num_shared_experts"] else 0
        dense_layers = draw(st.integers(1 if multi_kind else 0, 2))
        dense_ff = dense_ff if dense_layers else 0
    mlps = ["dense"] * dense_layers + ["moe"] * (layers - dense_layers)
    window = 0
    if multi_kind:
        if moe and draw(st.booleans()):  # interleaved: the dense layers spread among the MoE layers
            step = layers // dense_layers
            mlps = ["dense" if j % step == step - 1 and j // step < dense_layers else "moe" for j in range(layers)]
        window = draw(st.sampled_from([0, 64, 512]) if moe else st.sampled_from([64, 512]))
    # sliding-window attention on every other layer (Gemma-2, gpt-oss)
    kinds = tuple(LayerKind(mlp, "sliding" if window and j % 2 == 0 else "full", window if j % 2 == 0 else 0)
                  for j, mlp in enumerate(mlps))
    return ModelSpec(name="random", num_layers=layers, hidden_size=hidden, vocab_size=vocab, num_heads=heads,
                     num_kv_heads=kv_heads, head_dim=head_dim, max_context=8192, mlp_gated=draw(st.booleans()),
                     dense_intermediate_size=dense_ff, num_dense_layers=dense_layers, layer_kinds=kinds, **kwargs)


@st.composite
def accelerators(draw):
    ids = draw(st.lists(st.sampled_from(GPU_IDS), min_size=1, max_size=3, unique=True))
    out = []
    for k, gid in enumerate(ids):
        g = CATALOG.accelerators[gid]
        if draw(st.booleans()):  # a random accelerator on a real one's compute: own price, memory and bandwidth
            usd = draw(st.floats(0.05, 20.0, allow_nan=False))
            g = replace(g, id=f"{gid}-random{k}", price=replace(g.price, usd_per_hour=usd),
                        prices={g.price.tier: Price(usd, g.price.tier)},
                        memory_bytes=float(draw(st.sampled_from([0.25, 0.5, 1, 2, 8, 24, 80]))) * GiB,
                        hbm_bytes_per_s=g.hbm_bytes_per_s * draw(st.sampled_from([0.25, 1.0, 2.0])))
        out.append(g)
    return tuple(out)


@st.composite
def requests(draw, demand: bool | None = None, multi_kind: bool = False) -> Request:
    model = draw(models(multi_kind))
    isl = draw(st.integers(1, 4096))
    osl = draw(st.integers(1, 2048))
    if demand is None:
        demand = draw(st.booleans())
    kind = draw(st.sampled_from(["tokens", "rps"])) if demand else None
    workload = Workload(isl=isl, osl=osl,
                        output_tokens_per_s=draw(st.floats(1.0, 2e5)) if kind == "tokens" else None,
                        rate_rps=draw(st.floats(0.01, 100.0)) if kind == "rps" else None)
    # log-uniform SLOs from "out of reach" to "loose", so that some requests are infeasible
    tpot = draw(st.one_of(st.none(), st.floats(-4.0, 0.0).map(lambda e: 10.0 ** e)))
    ttft = draw(st.one_of(st.none(), st.floats(-4.0, 0.5).map(lambda e: 10.0 ** e)))
    gpus = draw(accelerators())
    per_type = {}
    if draw(st.booleans()):
        per_type[draw(st.sampled_from(gpus)).id] = draw(st.integers(0, 8))
    return Request(
        model=model, workload=workload, slo=SLO(ttft_s=ttft, tpot_s=tpot), gpus=gpus,
        weights=tuple(draw(st.lists(st.sampled_from(["bf16", "fp8", "int8", "int4"]), min_size=1, max_size=2,
                                    unique=True))),
        kv=tuple(draw(st.lists(st.sampled_from(["bf16", "fp8", "int8"]), min_size=1, max_size=2, unique=True))),
        pp=tuple(sorted(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True)))),
        micro_batches=tuple(sorted(draw(st.lists(st.sampled_from([1, 2, 4, 8, 16, 64, 256, 1024]), min_size=1,
                                                 max_size=3, unique=True)))),
        tp=tuple(sorted(draw(st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=2, unique=True)))),
        max_gpus=draw(st.one_of(st.none(), st.integers(1, 16))),
        max_gpus_per_type=per_type,
        time_limit_s=30.0,
    )


def tabulate(req: Request) -> tuple[Table, Limits] | None:
    """The integer table of every row of the request's space (search/oracle.exact_space_table) and its limits, or
    None when it has no rows."""
    return exact_space_table(req, CATALOG.perf)


def tabulate_grid(req: Request) -> tuple[Table, Limits] | None:
    """The integer table and limits of the request's grid rows (space.enumerate_rows), or None when none."""
    p = CATALOG.perf
    rows = enumerate_rows(req, p.max_batch)
    if not rows:
        return None
    return build_table(req, rows, p), Limits.of(req, p.max_batch)


@st.composite
def exact_requests(draw, demand: bool | None = None) -> Request:
    """Requests over the exact space (TP, PP and micro-batch left free) kept small: one or two GPU types with
    1/8-1/2 GiB of memory (so that few sequences fit), at most 4 GPUs, and long contexts."""
    req = draw(requests(demand))
    gpus = []
    for k, g in enumerate(req.gpus[:2]):
        gib = draw(st.sampled_from([0.125, 0.25, 0.5]))
        gpus.append(replace(g, id=f"{g.id.split('-random')[0]}-small{k}", memory_bytes=gib * GiB))
    return replace(req, gpus=tuple(gpus), pp=None, tp=None, micro_batches=None,
                   max_gpus=draw(st.integers(1, 4)), max_gpus_per_type={},
                   workload=replace(req.workload, isl=draw(st.integers(2048, 6000)), osl=draw(st.integers(64, 2048))))
