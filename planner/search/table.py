"""The integer-scaled table CP-SAT and the oracle share.

Every row's performance terms come from `perf.estimate.step_terms` (numpy, all rows at once) and are scaled to
integers with conservative rounding: times up (ns), memory needs up and capacities down (KiB), prices up
(1e-4 USD). `evaluate()` is the integer model of one row and one placement; the CP-SAT model encodes the same
inequalities, and the oracle calls `evaluate()` directly, so the two optimize the same objective exactly."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np

from ..perf import memory as mem
from ..perf.estimate import draft_terms, hardware, step_terms
from ..perf.specdec import per_token_decode_terms
from ..perf.params import PerfParams
from ..perf.step import Hardware, kind_models, kind_prefix_counts
from ..specs.cluster import pipeline_link_bytes_per_s
from ..units import BYTES_PER_ELEMENT
from ..errors import InputError
from .space import Request, Row, RowList, Shapes, shape_group_index  # noqa: F401 (RowList re-exported)

NS_PER_S = 10**9  # time unit: nanoseconds
BYTES_PER_MEM_UNIT = 1024  # memory unit: KiB
PRICE_UNITS_PER_USD = 10**4  # price unit: 1e-4 USD per GPU-hour
# The integer objective's unit depends on the mode (Limits.objective_unit):
# - without a demand, micro-USD per million output tokens =
#   price_1e4_usd_per_h · gpus · round_ns / (OBJ_DIVISOR · batch)
#   (1e-4 $/h · ns / 3600 s/h / 1e9 ns/s · 1e6 tok · 1e6 µ$)
# - with a demand (output tokens/s to serve), 1e-4 USD per hour = replicas · gpus · price_1e4_usd_per_h.
OBJ_DIVISOR = 36000
OBJECTIVE_UNIT_PER_TOKEN = "µUSD per million output tokens"
OBJECTIVE_UNIT_PER_HOUR = "1e-4 USD per hour"
# No plan may be slower than 1 s per output token per user, with or without an SLO: it bounds the integer domains
# (products of these stay below 2^62) and a sub-1-token/s stream is not a serving plan.
MAX_TPOT_NS = NS_PER_S
# Likewise a replica may spend at most this long per round of its batch's tokens, prefill stalls included (the
# throughput basis, `round_ns`): it keeps price · GPUs · round inside int64 in the objective.
MAX_ROUND_NS = 4 * NS_PER_S
# Rows whose prefill-stall coefficient (B · prefill chunks · pp) exceeds this are left out of the model (their
# prompts would take more steps than any useful plan; the bound keeps the coefficients inside int64).
MAX_STALL_COEF = 2**24
INT_LIMIT = 2**62


def stage_sum(e: np.ndarray, single: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """Σ over a row's stages of a per-stage extra kept as [first, middle, last] (`single` when pp = 1)."""
    return np.where(pp > 1, e[:, 0] + e[:, 2] + np.maximum(pp - 2, 0) * e[:, 1], single)


def stage_max(e: np.ndarray, single: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """max over a row's stages of a per-stage extra (see stage_sum)."""
    return np.where(pp > 1, np.maximum(np.maximum(e[:, 0], e[:, 1]), e[:, 2]), single)


def stage_min(e: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """min over a pipelined row's stages (pp > 1) of a per-stage extra kept as [first, middle, last]."""
    return np.where(pp > 2, np.minimum(np.minimum(e[:, 0], e[:, 1]), e[:, 2]), np.minimum(e[:, 0], e[:, 2]))


def slowest_stage_chunk_ns(dec_stage_ns: np.ndarray, dec_per_kind: np.ndarray, dec_extra: np.ndarray,
                           chunk_per_kind: np.ndarray, chunk_extra: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """A lower bound on the chunk increment of a pipelined row's slowest decode stage, over every placement whose
    slowest decode stage takes at least `dec_stage_ns`: that stage holds l >= ⌈(dec_stage_ns − max_s e_s) /
    max_k d_k⌉ layers (and >= 1), since its time Σ_k n_k·d_k + e_s is at most l · max_k d_k + max_s e_s, so its
    increment is at least l · min_k c_k + min_s ce_s (d, c: decode and chunk per layer of each kind; e, ce: the
    stages' extras)."""
    d_max = dec_per_kind[:, 0]
    for k in range(1, dec_per_kind.shape[1]):
        d_max = np.maximum(d_max, dec_per_kind[:, k])
    d_max = np.where(d_max > 0, d_max, INT_LIMIT)  # no decode time per layer: one layer
    need = dec_stage_ns - stage_max(dec_extra, dec_extra[:, 1], pp)
    layers = np.maximum(1, -(-np.maximum(need, 0) // d_max))
    return layers * min_over_kinds(chunk_per_kind) + stage_min(chunk_extra, pp)


def piped_cycle_floor(osl: int, n: np.ndarray, pp: np.ndarray, step: np.ndarray, path: np.ndarray,
                      least: np.ndarray, most: np.ndarray) -> np.ndarray:
    """A lower bound on `stalled_ns` of a pipelined row over every placement, n = the stalling chunks, given
    `step` <= pp·(T + hop), `path` <= Σ_s (D_s + C_s + hop + hop_c) (the same for every placement but for rounding:
    the stages' layer terms sum to the model's), `least` <= the chunk increment + hop_c of the slowest decode
    stage and `most` <= C + hop_c.

    Proof: for n <= OSL, `stalled_ns` = OSL·x + n·(X − x) with x = pp·(T + hop) >= step, and
    X >= pp·(D_{s*} + hop) + C_{s*} + hop_c >= x + least at the slowest decode stage s*, X >= path, so it is at
    least OSL·x + n·max(least, path − x), which never falls as x grows (slope OSL − n >= 0, or OSL): its value at
    x = step. For n > OSL it is OSL·x + n·pp·(C + hop_c) >= OSL·step + n·pp·most. The bound rises with every
    input."""
    n = np.asarray(n)
    return np.where(n <= osl, osl * step + n * np.maximum(least, path - step), osl * step + n * pp * most)


def min_over_kinds(per_kind: np.ndarray) -> np.ndarray:
    """per_kind.min(axis=1) of an [n, K] per-layer term, column by column (numpy's reduction over a short
    axis costs several times more for the few kinds a model has)."""
    out = per_kind[:, 0]
    for k in range(1, per_kind.shape[1]):
        out = np.minimum(out, per_kind[:, k])
    return out


def _ceil(x) -> np.ndarray:
    return np.ceil(np.asarray(x, float) - 1e-9).astype(np.int64)


@dataclass
class Table:
    rows: list[Row]
    num_layers: int
    osl: int
    # Times in ns (rounded up), memory in KiB (needs rounded up, capacity down), prices in 1e-4 USD per GPU-hour
    # (rounded up). Per-layer terms are [n, K], one column per layer kind k of the model (perf.step.kind_models:
    # dense/MoE MLP × full/sliding/chunked attention). A stage over layers [a, b) holds
    # n_k = kind_prefix[k, b] − kind_prefix[k, a] layers of kind k; its time is Σ_k n_k · *_ns_per_kind[:, k] + its
    # *_extra_ns, the [n, 3] extras kept as (first, middle, last) stage, *_extra_single_ns the one stage's when
    # pp = 1; its memory Σ_k n_k · mem_kib_per_kind[:, k] + its fixed memory.
    kind_prefix: np.ndarray  # [K, L + 1] layers of kind k among layers 0 … b − 1 (model only, not per row)
    dec_ns_per_kind: np.ndarray  # [n, K] decode: one layer's time in a micro-batch step (ns)
    dec_extra_ns: np.ndarray  # [n, 3] decode stage extras incl. the per-step overhead (ns)
    dec_extra_single_ns: np.ndarray  # decode extra of the single stage (ns)
    dec_hop_ns: np.ndarray  # decode stage-to-stage send (ns), 0 when pp = 1
    pf_ns_per_kind: np.ndarray  # [n, K] prefill of one prompt, per layer (ns)
    pf_extra_ns: np.ndarray  # [n, 3] prefill stage extras (ns)
    pf_extra_single_ns: np.ndarray  # prefill extra of the single stage (ns)
    pf_hop_ns: np.ndarray  # prefill stage-to-stage send (ns), 0 when pp = 1
    ttft_ns: np.ndarray  # placement-independent prefill latency
    # chunked prefill (perf.estimate.prefill_chunk_terms, packed_chunk): how much one chunk of a prompt lengthens
    # the decode micro-batch steps, as its share of the packed steps that carry the prompts arriving per step (and
    # of any steps beyond the cycle's), per layer (ns) and per stage (first, middle, last; single when pp = 1), and
    # per hop. A prompt has `chunks` such chunks; with one stage (or an engine that prefills first) its stall on
    # the decode cycle is `stall_coef` · (slowest stage increment + hop), stall_coef = chunks (1 prefilling first);
    # with pp > 1 (`piped`) stall_coef = pp · chunks bounds it, and where at most one chunk stalls per decode
    # cycle the exact stall is perf.pipeline.chunk_stall_s's on the placement's stages (`stalled_ns`).
    chunk_ns_per_kind: np.ndarray  # [n, K] one chunk's increment, per layer (ns)
    chunk_extra_ns: np.ndarray  # [n, 3] one chunk's increment per stage (ns)
    chunk_extra_single_ns: np.ndarray  # one chunk's increment of the single stage (ns)
    chunk_hop_ns: np.ndarray  # one chunk's stage-to-stage send (ns), 0 when pp = 1
    stall_coef: np.ndarray  # pp · chunks (a count; 1 for an engine that prefills first)
    # [n, K] memory per layer per GPU incl. the batch's KV (KiB); with one kind, incl. the larger of the batch's KV
    # and one maximum-length sequence's (both conditions in one), with several that one's in long_kib_per_kind
    mem_kib_per_kind: np.ndarray
    fixed_mem_kib: np.ndarray  # [n, 3] fixed memory per stage (embedding/head + activations + reserve) (KiB)
    fixed_mem_single_kib: np.ndarray  # fixed memory of the single stage (KiB)
    cap_kib: np.ndarray  # device memory (KiB, rounded down)
    price_1e4_usd_per_h: np.ndarray  # price per GPU-hour (1e-4 USD, rounded up)
    batch: np.ndarray
    pp: np.ndarray
    gpus: np.ndarray
    gpu_limit: np.ndarray  # most GPUs of this row's type the plan may use (-1: no limit)
    # fewest replicas meeting the TTFT percentile under queueing (search/queueing.py; -1: none does); None: no
    # queueing bound (no demand, or none asked for)
    min_replicas: np.ndarray | None = None
    # several layer kinds: [n, K] memory per layer incl. one sequence of the engine's maximum length (KiB); a stage
    # must hold both its layers' mem_kib_per_kind and their long_kib_per_kind beside its fixed memory
    long_kib_per_kind: np.ndarray | None = None
    # rows whose prompts' chunks stall a pipeline (pp > 1, chunked prefill): their stalls are `stalled_ns`' on the
    # placement's stages; None: none are (a decode-only table, a hand-built one)
    piped: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def memory_per_kind(self) -> list[tuple[str, np.ndarray]]:
        """The per-layer memory terms a stage must hold (each beside its fixed memory): 'mem', and 'long' with
        several layer kinds."""
        return [("mem", self.mem_kib_per_kind)] + ([] if self.long_kib_per_kind is None
                                                    else [("long", self.long_kib_per_kind)])

    @property
    def kind_counts(self) -> np.ndarray:
        """[K] the model's layers of each kind."""
        return self.kind_prefix[:, -1]

    def take(self, idx: np.ndarray) -> "Table":
        """Rows `idx` of this table, as a table (the per-row terms taken, the model's kept)."""
        idx = np.asarray(idx, np.int64)
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or f.name in ("num_layers", "osl", "kind_prefix"):
                out[f.name] = v
            elif f.name == "rows":
                out[f.name] = (RowList(v.shapes, v.shape_index[idx], v.micro_batch[idx]) if isinstance(v, RowList)
                               else [v[i] for i in idx.tolist()])
            else:
                out[f.name] = v[idx]
        return Table(**out)

    def stage_kinds(self, layers: Sequence[int]) -> list[list[int]]:
        """Layers of each kind on each stage of a placement ([pp][K], stages taking consecutive layers)."""
        c, a, out = self.kind_prefix, 0, []
        for n in layers:
            out.append([int(c[k, a + n]) - int(c[k, a]) for k in range(len(c))])
            a += n
        return out

    def stage_layers(self, i: int, layers: Sequence[int], which: str) -> list[int]:
        """Per stage of a placement, its layers' share Σ_k n_{s,k} · (row i's per-layer term of kind k) of 'dec',
        'pf', 'ch' (prefill chunk increment) time or 'mem' / 'long' memory (ns or KiB)."""
        coef = {"dec": self.dec_ns_per_kind, "pf": self.pf_ns_per_kind, "ch": self.chunk_ns_per_kind,
                "mem": self.mem_kib_per_kind, "long": self.long_kib_per_kind}[which][i].tolist()
        return [sum(n * c for n, c in zip(counts, coef)) for counts in self.stage_kinds(layers)]

    def extras(self, i: int, which: str) -> list[int]:
        """Per-stage extras of row i for 'dec', 'pf', 'ch' (prefill chunk increment) or 'mem'."""
        pp = int(self.pp[i])
        e, single = {"dec": (self.dec_extra_ns, self.dec_extra_single_ns),
                     "pf": (self.pf_extra_ns, self.pf_extra_single_ns),
                     "ch": (self.chunk_extra_ns, self.chunk_extra_single_ns),
                     "mem": (self.fixed_mem_kib, self.fixed_mem_single_kib)}[which]
        if pp == 1:
            return [int(single[i])]
        return [int(e[i, 0])] + [int(e[i, 1])] * (pp - 2) + [int(e[i, 2])]


@dataclass
class ShapeTerms:
    """What a table needs of each shape (a row without its micro-batch), computed once per shape: the hardware
    rates of its (GPU, weights, TP, DP), its pipeline link, bytes per element, price, capacity and GPU limit."""

    shapes: list[Row]  # micro_batch = 1 placeholders
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    dp: np.ndarray
    weight_bytes: np.ndarray
    kv_bytes: np.ndarray
    hw: Hardware
    link: np.ndarray
    cap_bytes: np.ndarray
    usd_per_hour: np.ndarray
    gpu_limit: np.ndarray
    gpu_key: list[tuple[str, str]]
    params: PerfParams  # each shape's family / engine profile (PerfParams.for_rows over the shapes)
    # bytes per GPU that do not depend on the micro-batch (perf.memory): one layer's weights, one sequence's KV per
    # layer at full context (over the DP groups) and at the engine's maximum length ([n, K]: one layer of each
    # kind, perf.step.kind_models), the first / last / single stage's embedding and head
    layer_weight_bytes: np.ndarray = None
    kv_seq_layer_bytes: np.ndarray = None
    long_kv_layer_bytes: np.ndarray = None
    first_stage_bytes: np.ndarray = None
    last_stage_bytes: np.ndarray = None
    single_stage_bytes: np.ndarray = None
    unit: np.ndarray | None = None  # per shape: its (shape without PP, pipeline link) as a number (`_units`)

    def param(self, name: str, idx: np.ndarray):
        """PerfParams field `name` for shapes idx (a number, or an array where the profiles differ)."""
        v = getattr(self.params, name)
        return v[idx] if isinstance(v, np.ndarray) else v

    def __len__(self) -> int:
        return len(self.shapes)

    def take(self, idx: np.ndarray) -> "ShapeTerms":
        """The terms of shapes `idx` (in that order) as `of` gives them for those shapes alone: every per-shape
        array taken; a profile field that no longer differs among them made one number again, the Python value
        `PerfParams.for_rows` would give (it keeps an array only where the profiles differ); units numbered by
        first appearance again. Each term is computed per shape from that shape's own inputs, so taking is the
        same as computing (tested field by field)."""
        idx = np.asarray(idx, np.int64)

        def one(v: np.ndarray):
            x = v[idx]
            return x[0].item() if len(x) and bool((x == x[0]).all()) else x

        params = replace(self.params, **{f: one(v) for f, v in vars(self.params).items() if isinstance(v, np.ndarray)})
        unit = None
        if self.unit is not None:
            _, first, inverse = np.unique(self.unit[idx], return_index=True, return_inverse=True)
            unit = np.argsort(np.argsort(first, kind="stable"), kind="stable")[inverse.reshape(len(idx))]
        arrays = {f: getattr(self, f)[idx] for f in ("tp", "pp", "ep", "dp", "weight_bytes", "kv_bytes", "link",
                                                     "cap_bytes", "usd_per_hour", "gpu_limit", "layer_weight_bytes",
                                                     "kv_seq_layer_bytes", "long_kv_layer_bytes", "first_stage_bytes",
                                                     "last_stage_bytes", "single_stage_bytes")}
        return ShapeTerms(shapes=[self.shapes[i] for i in idx.tolist()],
                          hw=Hardware(**{f: getattr(self.hw, f)[idx] for f in Hardware.__dataclass_fields__}),
                          gpu_key=[self.gpu_key[i] for i in idx.tolist()], params=params,
                          unit=None if unit is None else unit.astype(np.int64), **arrays)

    @classmethod
    def of(cls, req: Request, shapes: Sequence[Row], p: PerfParams) -> "ShapeTerms":
        # Shapes of one group (space.group_key: the shape without its PP depth) share every term but the pipeline
        # link and the depth: each is computed once per group (its first shape standing in) and broadcast
        shapes = shapes if isinstance(shapes, (list, Shapes)) else list(shapes)  # a Shapes keeps its groups
        n = len(shapes)
        g = shape_group_index(shapes)
        # one shape per group, by first appearance (a Shapes holds them at PP 1: nothing below reads their depth)
        reps = (shapes.reps if isinstance(shapes, Shapes)
                else [shapes[i] for i in np.unique(g, return_index=True)[1].tolist()])
        ng = len(reps)
        ints_g = np.array([(r.tp, r.ep, r.dp) for r in reps], dtype=np.int64).reshape(ng, 3)
        pp = getattr(shapes, "pp", None)  # a space.Shapes knows its depths
        pp = np.fromiter((r.pp for r in shapes), np.int64, n) if pp is None else pp
        tp_i, ep_i, dp_i = ints_g[g, 0], ints_g[g, 1], ints_g[g, 2]
        # per (GPU, weights, tp, dp) hardware, per (GPU, tp·dp, pp) pipeline link: computed once, broadcast
        keys: dict[tuple, int] = {}
        key_of = np.array([keys.setdefault((r.gpu.id, r.weights, r.tp, r.dp), len(keys)) for r in reps],
                          np.int64).reshape(ng)[g]
        first: dict[tuple, Row] = {}
        for r in reps:
            first.setdefault((r.gpu.id, r.weights, r.tp, r.dp), r)
        hws = [hardware(r.gpu, r.weights, r.tp, r.dp) for r in first.values()]  # in key order
        p_default = {"tp_link_efficiency": p.link_efficiency, "tp_latency_s": p.allreduce_latency_s}
        hw = Hardware(**{f: np.array([_field(h, f, p_default) for h in hws], float).reshape(len(hws))[key_of]
                         for f in Hardware.__dataclass_fields__})
        # the link per distinct (GPU, TP·DP, PP) (numpy groups the shapes), and per _link_key among those
        gpu_ids: dict[str, int] = {}
        gpu_of_g = np.fromiter((gpu_ids.setdefault(r.gpu.id, len(gpu_ids)) for r in reps), np.int64, ng)
        gpu_of = gpu_of_g[g]
        tpdp = tp_i * dp_i
        depth = (gpu_of * (int(tpdp.max(initial=0)) + 1) + tpdp) * (int(pp.max(initial=0)) + 1) + pp
        _, first_at, inverse = np.unique(depth, return_index=True, return_inverse=True)
        links: dict[tuple, float] = {}  # by _link_key
        per_depth = np.empty(len(first_at), float)
        for u in np.argsort(first_at).tolist():  # in the shapes' order, as the link cache was filled before
            r = shapes[int(first_at[u])]
            k = _link_key(r)
            per_depth[u] = links[k] if k in links else links.setdefault(
                k, pipeline_link_bytes_per_s(r.gpu, r.tp * r.dp, r.pp))
        link = per_depth[inverse.reshape(n)]
        limit_of = {g_.id: (-1 if req.gpu_limit(g_) is None else req.gpu_limit(g_)) for g_ in req.gpus}
        gpu_key_g = [(r.gpu.id, r.gpu.family) for r in reps]
        gpu_key = [gpu_key_g[k] for k in g.tolist()]
        gpus = [reps[i].gpu for i in np.unique(gpu_of_g, return_index=True)[1].tolist()]  # in gpu_ids' order
        # each shape's family / engine profile (PerfParams.for_rows over the groups, taken per shape)
        pg = p.for_rows(gpu_key_g)
        params = replace(pg, **{f: v[g] for f, v in vars(pg).items() if isinstance(v, np.ndarray)})
        wb_g = np.array([BYTES_PER_ELEMENT[r.weights] for r in reps], float).reshape(ng)
        kvb_g = np.array([BYTES_PER_ELEMENT[r.kv] for r in reps], float).reshape(ng)
        tp_g, dp_g = ints_g[:, 0].astype(float), ints_g[:, 2]
        m, w = req.model, req.workload
        kms = [km for _, _, km in kind_models(m)]

        def per_kind(f):  # [n, K], from each group's
            return np.stack([f(km) for km in kms], axis=1).reshape(ng, len(kms))[g]

        def per_shape(x):  # each group's, per shape
            return np.asarray(x, float).reshape(ng)[g]

        # each shape's unit (`_units`): its group and pipeline link, numbered by first appearance
        link_ids = np.unique(link, return_inverse=True)[1].reshape(n)
        _, unit_first, unit_inv = np.unique(g * (int(link_ids.max(initial=0)) + 1) + link_ids, return_index=True,
                                            return_inverse=True)
        unit = np.argsort(np.argsort(unit_first, kind="stable"), kind="stable")[unit_inv.reshape(n)]
        return cls(shapes, tp_i, pp, ep_i, dp_i, wb_g[g], kvb_g[g], hw, link,
                   np.array([g_.memory_bytes for g_ in gpus], float).reshape(len(gpus))[gpu_of],
                   np.array([g_.usd_per_hour for g_ in gpus], float).reshape(len(gpus))[gpu_of],
                   np.array([limit_of.get(g_.id, -1) for g_ in gpus], np.int64).reshape(len(gpus))[gpu_of],
                   gpu_key, params,
                   per_kind(lambda km: mem.layer_weight_bytes_per_gpu(km, wb_g, tp_g, dp_g) + 0 * tp_g),
                   per_kind(lambda km: mem.kv_bytes_per_sequence_per_layer_per_gpu(km, kvb_g, tp_g,
                                                                                   np.add(w.isl, w.osl)) / dp_g),
                   per_kind(lambda km: mem.kv_bytes_per_sequence_per_layer_per_gpu(km, kvb_g, tp_g,
                                                                                   w.engine_max_len(m)) + 0 * tp_g),
                   per_shape(mem.stage_weight_bytes_per_gpu(m, wb_g, tp_g, 0, True, False) + 0 * tp_g),
                   per_shape(mem.stage_weight_bytes_per_gpu(m, wb_g, tp_g, 0, False, True) + 0 * tp_g),
                   per_shape(mem.stage_weight_bytes_per_gpu(m, wb_g, tp_g, 0, True, True) + 0 * tp_g),
                   unit=unit.astype(np.int64))


def _link_key(r: Row) -> tuple:
    """What `pipeline_link_bytes_per_s` depends on: the GPU, TP·DP, and which kinds of stage-to-stage hop the
    replica has (inside one scale-up domain, across domains); the slowest hop of each kind is alike."""
    g, d = r.tp * r.dp, r.gpu.scale_up_domain
    return (r.gpu.id, g, tuple((s * g) // d == ((s + 1) * g) // d for s in _first_of_each_kind(g, d, r.pp)))


def _first_of_each_kind(g: int, d: int, pp: int) -> list[int]:
    """The first hop (0 … pp − 2) of each kind (within / across scale-up domains) that a pp-stage replica of
    g GPUs per stage has, stage s on GPUs s·g … (s+1)·g − 1 (as specs.cluster numbers them)."""
    if pp < 2:
        return []
    if g >= d:
        return [0]  # every hop crosses into another domain
    first_cross = -(-d // g) - 1  # hop s crosses when (s+1)·g reaches the next multiple of d
    return [0] if first_cross > pp - 2 else [0, first_cross]


def build_table(req: Request, rows: Sequence[Row], p: PerfParams) -> Table:
    """The table of explicit rows: per-shape terms computed once per distinct shape (the rows' own shapes when
    `rows` is `enumerate_rows`' RowList, else found by grouping the rows), then broadcast to the rows."""
    if isinstance(rows, RowList):
        return table_of(req, ShapeTerms.of(req, rows.shapes, p), rows.shape_index, rows.micro_batch, p, rows=rows)
    mb = np.fromiter((r.micro_batch for r in rows), np.int64, len(rows))
    keys: dict[tuple, int] = {}
    idx = np.fromiter((keys.setdefault((r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp), len(keys))
                       for r in rows), np.int64, len(rows))
    first: dict[int, Row] = {}
    for r, k in zip(rows, idx.tolist()):
        first.setdefault(k, r)
    shapes = [replace(first[k], micro_batch=1) for k in range(len(keys))]
    return table_of(req, ShapeTerms.of(req, shapes, p), idx, mb, p, rows=list(rows))


def memory_kib(req: Request, s: ShapeTerms, idx: np.ndarray, mb: np.ndarray, first_stage_extra_bytes=0.0):
    """([n, K] memory per layer of each kind per GPU incl. the batch's KV, the same incl. one sequence of the
    engine's maximum length or None, [n, 3] fixed memory per stage, fixed memory of a single stage, capacity), KiB,
    rounded conservatively: shapes `idx` at micro-batches `mb`. KV per layer is the batch's at full context, and a
    stage must also hold one sequence of the engine's maximum length (perf.estimate: engines refuse to start
    otherwise): with one layer kind the larger of the two per layer (both conditions in one), with several the two
    apart (a sliding-window layer's KV may be set by the batch while a full layer's is by the long sequence, so
    the per-layer larger of the two would overstate the stage); every term is affine in the micro-batch. `first_stage_extra_bytes`: more
    on the first stage (a speculative draft's weights and KV)."""
    m = req.model
    tp, dp, pp = s.tp[idx].astype(float), s.dp[idx], s.pp[idx]
    mb = np.asarray(mb, np.int64)
    batch = pp * mb
    U = BYTES_PER_MEM_UNIT
    w, kv, long = s.layer_weight_bytes[idx], batch[:, None] * s.kv_seq_layer_bytes[idx], s.long_kv_layer_bytes[idx]
    if w.shape[1] == 1:
        mem_kib_per_kind, long_kib_per_kind = _ceil((w + np.maximum(kv, long)) / U), None
    else:
        mem_kib_per_kind, long_kib_per_kind = _ceil((w + kv) / U), _ceil((w + long) / U)
    cap_bytes = s.cap_bytes[idx]
    # activations as perf.estimate sizes them
    act = mem.activation_bytes_per_gpu(m, tp, s.param("max_batched_tokens", idx), mb / dp)
    base = act + mem.reserve_bytes(cap_bytes, s.param("memory_reserve_fraction", idx))
    emb, head, both = s.first_stage_bytes[idx], s.last_stage_bytes[idx], s.single_stage_bytes[idx]
    extra = first_stage_extra_bytes
    fixed_mem_kib = np.stack([_ceil((emb + base + extra) / U), _ceil(base / U), _ceil((head + base) / U)], axis=1)
    return (mem_kib_per_kind, long_kib_per_kind, fixed_mem_kib, _ceil((both + base + extra) / U),
            np.floor(cap_bytes / U).astype(np.int64))


def memory_fits(req: Request, s: ShapeTerms, idx: np.ndarray, mb: np.ndarray) -> np.ndarray:
    """`lower_bounds`' necessary memory condition, without the time terms (cheap; monotone in the micro-batch)."""
    return (memory_excess_kib(req, s, idx, mb) <= 0).all(axis=1)


def memory_excess_kib(req: Request, s: ShapeTerms, idx: np.ndarray, mb: np.ndarray) -> np.ndarray:
    """[n, C] by how much each of `_memory_ok`'s conditions is missed (KiB; <= 0: met): `memory_fits` is every
    column <= 0. Each column grows (or stays) with the micro-batch, nearly in proportion (the terms are affine in
    it before rounding, but for the larger of the batch's KV and one long sequence's)."""
    mem_kib, long_kib, *rest = memory_kib(req, s, idx, mb)
    return _memory_excess(kind_prefix_counts(req.model)[:, -1], s.pp[idx],
                          [mem_kib] + [long_kib] * (long_kib is not None), *rest)


def _memory_ok(kind_counts: np.ndarray, pp: np.ndarray, per_kind_kib: list[np.ndarray], fixed_mem_kib: np.ndarray,
               fixed_single_kib: np.ndarray, cap_kib: np.ndarray) -> np.ndarray:
    """Necessary for memory over every placement, for each per-layer memory term m (Table.memory_per_kind): the
    layers' total (Σ_k n_k · m_k, whatever the placement) fits in pp devices, and a stage of one layer (at least
    the smallest kind's) fits beside the largest stage's fixed memory."""
    ok = np.ones(len(pp), bool)
    for m in per_kind_kib:
        ok &= ((m @ kind_counts + stage_sum(fixed_mem_kib, fixed_single_kib, pp) <= pp * cap_kib)
               & (stage_max(fixed_mem_kib, fixed_single_kib, pp) + min_over_kinds(m) <= cap_kib))
    return ok


def _memory_excess(kind_counts: np.ndarray, pp: np.ndarray, per_kind_kib: list[np.ndarray], fixed_mem_kib: np.ndarray,
                   fixed_single_kib: np.ndarray, cap_kib: np.ndarray) -> np.ndarray:
    """`_memory_ok`'s conditions as need − room per column (met where <= 0)."""
    cols = []
    for m in per_kind_kib:
        cols.append(m @ kind_counts + stage_sum(fixed_mem_kib, fixed_single_kib, pp) - pp * cap_kib)
        cols.append(stage_max(fixed_mem_kib, fixed_single_kib, pp) + min_over_kinds(m) - cap_kib)
    return np.stack(cols, axis=1).reshape(len(pp), len(cols))


def table_of(req: Request, s: ShapeTerms, idx: np.ndarray, mb: np.ndarray, p: PerfParams,
             rows: Sequence[Row] | None = None, decode_only: bool = False,
             decode_terms: tuple | None = None, fits: bool = False) -> Table:
    """The integer table of shapes `idx` (of `s`) at micro-batches `mb`, all rows at once.

    `decode_only`: only the decode terms (dec_ns_per_kind, dec_extra_ns, dec_extra_single_ns, dec_hop_ns) and the
    row facts (batch, pp, gpus, price, GPU limit, kind_prefix) are filled, every other term is None (a read fails
    loudly): for the decode-cycle bounds (bounds.cycle_floor, bounds.pool_rows), which read nothing else. The
    decode terms are the same computation as in a full table (step_terms computes the decode step first, the
    prefill and chunk steps beside it), so they are equal to a full table's bit for bit (tested).
    `decode_terms`: (dec_ns_per_kind, dec_extra_ns, dec_extra_single_ns, dec_hop_ns) of these very rows from a
    decode_only table (taken instead of computing the decode layer step again; without a draft model).
    `fits`: the rows are known to pass `memory_fits` (the lazy search's positions below `Space.top`) and there is
    no draft model (whose weights and KV `memory_fits` leaves out): the memory terms (mem_kib_per_kind,
    long_kib_per_kind, fixed_mem_kib, fixed_mem_single_kib, cap_kib) are left None and `lower_bounds` takes
    memory_ok as true, which is what those terms would give (`memory_fits` is its memory condition on the same
    terms); `with_memory` gives rows of such a table with them. (bounds.latency_depths asks for `fits` too: it
    reads no memory term and no `lower_bounds` of its table.)

    Rows that differ only in their PP depth share every time term but the stage-to-stage sends, and those depend
    on the pipeline link: the terms are computed once per unit (shape without PP, pipeline link, micro-batch;
    `_units`) and taken per row, where the PP depth enters (stage sums, hops, stall coefficient, memory). With a
    draft model every row is its own unit (the draft's terms depend on the replica batch, PP × micro-batch)."""
    m, w = req.model, req.workload
    idx = np.asarray(idx, np.int64)
    mb_i = np.asarray(mb, np.int64)
    n = len(idx)
    pp, dp = s.pp[idx], s.dp[idx]
    spec = req.spec  # speculative decoding: the target verifies γ + 1 tokens per sequence per step
    u, back = (_units(s, idx, mb_i) if spec is None else (np.arange(n), None))
    at = (lambda x: x) if back is None else (lambda x: x[back])  # noqa: E731  (a unit's value per row)
    ui = idx[u]
    nu = len(u)
    tp, ep, mb = s.tp[ui].astype(float), s.ep[ui].astype(float), mb_i[u].astype(float)
    dpu = s.dp[ui]
    wb, kvb = s.weight_bytes[ui], s.kv_bytes[ui]
    hw = Hardware(**{f: getattr(s.hw, f)[ui] for f in Hardware.__dataclass_fields__})
    # each unit's family / engine profile (the arrays PerfParams.for_rows made per shape, taken per unit)
    p = replace(s.params, **{f: v[ui] for f, v in vars(s.params).items() if isinstance(v, np.ndarray)})
    # one layer of each kind (perf.step.kind_models); the stage ends, hops and chunk counts do not depend on the
    # layers' kind and are read from the first kind's terms. Only the steps' times are read (time_only)
    ts = [step_terms(km, hw, p, tp=tp, ep=ep, weight_bytes=wb, kv_bytes=kvb, micro_batch=mb, isl=w.isl, osl=w.osl,
                     pipeline_link_bytes_per_s=s.link[ui], dp=dpu,
                     tokens_per_seq=1 if spec is None else spec.draft_length + 1, chunked=not decode_only,
                     prefill=not decode_only, decode=decode_terms is None, time_only=True)
          for _, _, km in kind_models(m)]
    t = ts[0]

    def kinds(f) -> np.ndarray:  # [K, units]: a per-layer term of each kind
        return np.stack([np.asarray(f(tk), float) + 0 * tp for tk in ts])

    ovh = p.step_overhead_s
    S = NS_PER_S
    multi = pp > 1
    if decode_terms is not None:
        if spec is not None:
            raise ValueError("table_of: decode_terms without a draft model only")
        dec_ns_per_kind, dec_extra_ns, dec_extra_single_ns, dec_hop_ns = decode_terms
        draft = None
    else:
        first_d, last_d = np.asarray(t.decode_first.time_s) + 0 * tp, np.asarray(t.decode_last.time_s) + 0 * tp
        dec_layer = kinds(lambda tk: tk.decode_layer.time_s)  # [K, units]
        dec_first, dec_mid, dec_last, dec_single = (first_d + ovh, np.full(nu, ovh) + 0.0, last_d + ovh,
                                                    first_d + last_d + ovh)
        dec_hop, draft = np.asarray(t.decode_p2p_s) + 0 * tp, None
        if spec is not None:  # per expected emitted token, γ draft passes included (specdec.per_token_decode_terms)
            draft = draft_terms(spec, hw, p, tp=tp, dp=dpu, weight_bytes=wb, kv_bytes=kvb, batch=pp * mb,
                                isl=w.isl, osl=w.osl)
            dec_layer, (dec_first, dec_mid, dec_last, dec_single), dec_hop = per_token_decode_terms(
                dec_layer, (dec_first, dec_mid, dec_last, dec_single), dec_hop, pp, draft.step_s, spec.acceptance,
                spec.draft_length)
        dec_extra_ns = at(np.stack([_ceil(dec_first * S), _ceil(dec_mid * S), _ceil(dec_last * S)], axis=1))
        dec_extra_single_ns = at(_ceil(dec_single * S))
        dec_ns_per_kind = at(_ceil(dec_layer * S).T)
        dec_hop_ns = np.where(multi, at(_ceil(dec_hop * S)), 0)
    L = m.num_layers
    kind_prefix = kind_prefix_counts(m)
    facts = dict(rows=RowList(s.shapes, idx, mb_i) if rows is None else rows, num_layers=L, osl=w.osl,
                 kind_prefix=kind_prefix, dec_ns_per_kind=dec_ns_per_kind, dec_extra_ns=dec_extra_ns,
                 dec_extra_single_ns=dec_extra_single_ns, dec_hop_ns=dec_hop_ns,
                 price_1e4_usd_per_h=_ceil(s.usd_per_hour[idx] * PRICE_UNITS_PER_USD), batch=pp * mb_i, pp=pp,
                 gpus=(s.tp[idx].astype(float) * dp * pp).astype(np.int64), gpu_limit=s.gpu_limit[idx])
    if decode_only:
        return Table(**facts, **{f: None for f in _NOT_DECODE})
    first_p, last_p = np.asarray(t.prefill_first.time_s) + 0 * tp, np.asarray(t.prefill_last.time_s) + 0 * tp
    pf_extra_ns = at(np.stack([_ceil((first_p + ovh) * S), _ceil(np.full(nu, ovh) * S), _ceil((last_p + ovh) * S)],
                              axis=1))
    pf_extra_single_ns = at(_ceil((first_p + last_p + ovh) * S))
    pf_ns_per_kind = at(_ceil(kinds(lambda tk: tk.prefill_layer.time_s) * S).T)
    pf_hop_ns = np.where(multi, at(_ceil(np.asarray(t.prefill_p2p_s) * S)), 0)
    ttft = pf_ns_per_kind @ kind_prefix[:, -1] + stage_sum(pf_extra_ns, pf_extra_single_ns, pp) + (pp - 1) * pf_hop_ns
    if draft is not None:  # the draft prefills each prompt too
        ttft = ttft + _ceil(np.asarray(draft.prefill_s) * S + 0 * tp)
    ch = t.chunk
    chunk_ns_per_kind = at(_ceil(kinds(lambda tk: tk.chunk.layer_s) * S).T)
    first_c, last_c = np.asarray(ch.first_s) + 0 * tp, np.asarray(ch.last_s) + 0 * tp
    chunk_extra_ns = at(np.stack([_ceil(first_c * S), np.zeros(nu, np.int64), _ceil(last_c * S)], axis=1))
    chunk_extra_single_ns = at(_ceil((first_c + last_c) * S))
    chunk_hop_ns = np.where(multi, at(_ceil(np.asarray(ch.p2p_s) * S + 0 * tp)), 0)
    stall_coef = (pp * at(np.asarray(t.prefill_chunks) + 0 * tp)).astype(np.int64)
    # where the arriving prompts overflow the token budget, each chunk also carries a share of the extra decode
    # steps (perf.estimate.packed_chunk): taken from the integer decode terms (each rounded up), so a table built
    # with `decode_terms` gets the same values
    dshare = at(np.asarray(t.chunk_decode_share, float) + 0 * tp)
    if np.any(dshare > 0):
        chunk_ns_per_kind = chunk_ns_per_kind + _ceil(dshare[:, None] * dec_ns_per_kind)
        chunk_extra_ns = chunk_extra_ns + _ceil(dshare[:, None] * dec_extra_ns)
        chunk_extra_single_ns = chunk_extra_single_ns + _ceil(dshare * dec_extra_single_ns)
        chunk_hop_ns = chunk_hop_ns + _ceil(dshare * dec_hop_ns)
    # pipelined rows charge the exact stalls (`stalled_ns`) on the decode step's stage times; with a draft model
    # those are per emitted token (draft passes included) while perf.estimate stalls the raw step: the bound
    # stall_coef · (C + hop_c) (perf.pipeline.chunk_stall_s <= pp · (max_s Δ_s + Δp2p)), as rows with more than one
    # chunk per cycle
    piped = multi & (spec is None)
    if p.prefill_first:  # a prompt's whole prefill on the slowest stage stalls the decoders (perf.estimate)
        chunk_ns_per_kind, chunk_extra_ns, chunk_extra_single_ns = pf_ns_per_kind, pf_extra_ns, pf_extra_single_ns
        chunk_hop_ns, stall_coef = np.zeros(n, np.int64), np.ones(n, np.int64)
        piped = np.zeros(n, bool)

    if fits and draft is not None:
        raise ValueError("table_of: fits without a draft model only")
    draft_mem = 0.0 if draft is None else draft.weight_bytes + draft.kv_bytes  # on the first stage
    mem_kib_per_kind, long_kib_per_kind, fixed_mem_kib, fixed_mem_single_kib, cap_kib = (
        (None,) * 5 if fits else memory_kib(req, s, idx, mb_i, draft_mem))
    return Table(**facts, pf_ns_per_kind=pf_ns_per_kind, pf_extra_ns=pf_extra_ns,
                 pf_extra_single_ns=pf_extra_single_ns, pf_hop_ns=pf_hop_ns, ttft_ns=ttft,
                 chunk_ns_per_kind=chunk_ns_per_kind, chunk_extra_ns=chunk_extra_ns,
                 chunk_extra_single_ns=chunk_extra_single_ns, chunk_hop_ns=chunk_hop_ns, stall_coef=stall_coef,
                 mem_kib_per_kind=mem_kib_per_kind, fixed_mem_kib=fixed_mem_kib,
                 fixed_mem_single_kib=fixed_mem_single_kib, cap_kib=cap_kib, long_kib_per_kind=long_kib_per_kind,
                 piped=piped)


def with_memory(req: Request, s: ShapeTerms, t: Table, idx: np.ndarray) -> Table:
    """Rows `idx` of a table whose memory terms were left out (table_of `fits`; rows of shapes `s`, no draft
    model), with their memory terms."""
    sub = t.take(idx)
    sub.mem_kib_per_kind, sub.long_kib_per_kind, sub.fixed_mem_kib, sub.fixed_mem_single_kib, sub.cap_kib = (
        memory_kib(req, s, sub.rows.shape_index, sub.rows.micro_batch))
    return sub


# the Table terms a decode_only table (table_of) leaves None
_NOT_DECODE = ("pf_ns_per_kind", "pf_extra_ns", "pf_extra_single_ns", "pf_hop_ns", "ttft_ns", "chunk_ns_per_kind",
               "chunk_extra_ns", "chunk_extra_single_ns", "chunk_hop_ns", "stall_coef", "mem_kib_per_kind",
               "fixed_mem_kib", "fixed_mem_single_kib", "cap_kib", "piped")


def _units(s: ShapeTerms, idx: np.ndarray, mb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(one row of each distinct (shape without its PP depth, pipeline link, micro-batch), each row's unit): the
    step terms' inputs are equal within a unit."""
    if s.unit is None:
        keys: dict[tuple, int] = {}
        s.unit = np.array([keys.setdefault((r.gpu.id, r.weights, r.kv, r.tp, r.dp, r.ep, float(l)), len(keys))
                           for r, l in zip(s.shapes, s.link.tolist())], np.int64).reshape(len(s.shapes))
    _, first, back = np.unique(s.unit[idx] * (int(mb.max(initial=0)) + 1) + mb, return_index=True,
                               return_inverse=True)
    return first, back.reshape(len(idx))


def _field(h: Hardware, name: str, defaults: dict[str, float]) -> float:
    """One Hardware field as a number (a None link parameter is the perf default it stands for; the a2a link
    defaults to the TP link)."""
    v = getattr(h, name)
    if v is None and name.startswith("a2a_"):
        v = getattr(h, {"a2a_bytes_per_s": "scale_up_bytes_per_s", "a2a_efficiency": "tp_link_efficiency",
                        "a2a_latency_s": "tp_latency_s"}[name])
    if v is None:
        v = defaults[name.replace("a2a_efficiency", "tp_link_efficiency").replace("a2a_latency_s", "tp_latency_s")]
    return float(v)


@dataclass(frozen=True)
class Limits:
    """Integer-scaled constraints of a request."""

    tpot_ns: int  # per-user time per output token, rounded down
    ttft_ns: int | None
    demand_tokens_per_s: int | None  # output tokens/s the replicas must serve, rounded up
    max_replicas: int
    max_objective: int  # objective values above this are out of the integer range (see objective_cap)

    @property
    def objective_unit(self) -> str:
        """The unit of every integer objective under these limits (Evaluation, Bounds, CP-SAT): the cost of a
        million output tokens without a demand, the fleet's hourly price with one."""
        return OBJECTIVE_UNIT_PER_TOKEN if self.demand_tokens_per_s is None else OBJECTIVE_UNIT_PER_HOUR

    @classmethod
    def of(cls, req: Request, max_batch: int) -> "Limits":
        tpot = req.slo.tpot_s if req.slo.tpot_s is not None else MAX_TPOT_NS / NS_PER_S
        demand = req.workload.demand_output_tokens_per_s
        tpot_ns = max(1, min(MAX_TPOT_NS, int(math.floor(tpot * NS_PER_S))))  # >= 1 ns: no row meets less
        d = None if demand is None else int(math.ceil(demand - 1e-9))
        if d is None:
            max_replicas = 1
            max_obj = INT_LIMIT // (OBJ_DIVISOR * max_batch)
        else:
            max_replicas = max(1, -(-(d * MAX_ROUND_NS) // NS_PER_S))  # enough even at batch 1
            if max_replicas * max_batch * NS_PER_S > INT_LIMIT:
                raise InputError(f"demand of {demand:.3g} output tokens/s is beyond what one plan can model")
            max_obj = INT_LIMIT // 4
        return cls(tpot_ns=tpot_ns,
                   ttft_ns=None if req.slo.ttft_s is None else int(math.floor(req.slo.ttft_s * NS_PER_S)),
                   demand_tokens_per_s=d, max_replicas=max_replicas, max_objective=max_obj)


@dataclass(frozen=True)
class Evaluation:
    feasible: bool
    objective: int  # in `objective_unit`
    objective_unit: str  # the request's mode (Limits.objective_unit): OBJECTIVE_UNIT_PER_TOKEN or _PER_HOUR
    tpot_ns: int
    ttft_ns: int
    dec_stage_ns: int  # slowest stage's decode step
    pf_stage_ns: int  # slowest stage's prefill of one prompt
    replicas: int
    chunk_stage_ns: int = 0  # slowest stage's prefill-chunk increment
    round_ns: int = 0  # replica time per token of each sequence, every prefill stall included (throughput basis)
    violated: tuple[str, ...] = ()


def tpot_ns(table: Table, i: int, dec_stages: Sequence[int], chunk_stages: Sequence[int]) -> int:
    """A user's TPOT with these integer stage times (decode step, prefill-chunk increment per stage): the decode
    cycle pp·(T_dec + hop) plus the other B − 1 requests' prefill stalls (`stalled_ns`), rounded up
    (batching.steady_state_tpot_s)."""
    return -(-stalled_ns(table, i, dec_stages, chunk_stages, int(table.batch[i]) - 1) // table.osl)


def round_ns(table: Table, i: int, dec_stages: Sequence[int], chunk_stages: Sequence[int]) -> int:
    """The replica's time per round of B tokens, every prefill included (batching.replica_time_per_round_s)."""
    return -(-stalled_ns(table, i, dec_stages, chunk_stages, int(table.batch[i])) // table.osl)


def stalled_ns(table: Table, i: int, dec_stages: Sequence[int], chunk_stages: Sequence[int], prompts: int) -> int:
    """OSL × (the decode cycle + the stalls of `prompts` prompts per OSL tokens), in ns, row i with these stage
    times. With T = max_s D_s (decode), C = max_s C_s (chunk increment), hop, hop_c, n = prompts · chunks the
    stalling chunks:

    - one stage, or an engine that prefills first: pp·OSL·(T + hop) + prompts·stall_coef·(C + hop_c) (as
      perf.estimate charges it);
    - pipelined (`piped`) with n <= OSL (at most one chunk per decode cycle): with X = max(max_s(pp·(D_s + hop) +
      C_s + hop_c), Σ_s (D_s + C_s + hop + hop_c)) the cycle a chunk's micro-batch takes, one chunk's stall is
      X − pp·(T + hop) (perf.pipeline.chunk_stall_s on these stages), so the value is pp·OSL·(T + hop) +
      n·(X − pp·(T + hop)) = (OSL − n)·pp·(T + hop) + n·X, as perf.estimate charges it; non-decreasing in every
      stage time, so times rounded up give at least the float model's;
    - pipelined with n > OSL: the bound pp·OSL·(T + hop) + n·pp·(C + hop_c) (chunk_stall_s <= pp·(C + hop_c)).
      The float value is not monotone there (T enters with the coefficient (OSL − n)·pp < 0: the float model
      credits the slowest stage's slack to every chunk of a cycle, so it ranks unbalanced placements first), left
      out of the integer model."""
    pp, osl = int(table.pp[i]), table.osl
    hop, hop_c = int(table.dec_hop_ns[i]), int(table.chunk_hop_ns[i])
    cycle = pp * (max(dec_stages) + hop)
    n = prompts * (int(table.stall_coef[i]) // pp)
    if table.piped is None or not bool(table.piped[i]) or n > osl:
        return osl * cycle + prompts * int(table.stall_coef[i]) * (max(chunk_stages) + hop_c)
    busy = max(pp * (d + hop) + c + hop_c for d, c in zip(dec_stages, chunk_stages))
    x = max(busy, sum(dec_stages) + sum(chunk_stages) + pp * (hop + hop_c))
    return osl * cycle + n * (x - cycle)


def replicas_needed(table: Table, i: int, round_t: int, demand: int) -> int:
    """Smallest r with r · B / round ≥ demand, i.e. r·B·1e9 ≥ demand·round_ns."""
    b = int(table.batch[i])
    return max(1, -(-(demand * round_t) // (b * NS_PER_S)))


def evaluate(table: Table, i: int, layers: Sequence[int], lim: Limits) -> Evaluation:
    """Integer evaluation of row i with `layers` per stage; the reference semantics of the CP-SAT model."""
    pp = int(table.pp[i])
    assert len(layers) == pp and sum(layers) == table.num_layers and min(layers) >= 1
    dec_extra_ns, pf_extra_ns, fixed_mem_kib = table.extras(i, "dec"), table.extras(i, "pf"), table.extras(i, "mem")
    cap_kib = int(table.cap_kib[i])
    dec_stages = [l + e for l, e in zip(table.stage_layers(i, layers, "dec"), dec_extra_ns)]
    chunk_stages = [l + e for l, e in zip(table.stage_layers(i, layers, "ch"), table.extras(i, "ch"))]
    dec_stage_ns, chunk_stage_ns = max(dec_stages), max(chunk_stages)
    pf_stage_ns = max(l + e for l, e in zip(table.stage_layers(i, layers, "pf"), pf_extra_ns))
    tp_ns = tpot_ns(table, i, dec_stages, chunk_stages)
    rd_ns = round_ns(table, i, dec_stages, chunk_stages)
    ttft = int(table.ttft_ns[i])
    violated = []
    if any(l + f > cap_kib for which, _ in table.memory_per_kind
           for l, f in zip(table.stage_layers(i, layers, which), fixed_mem_kib)):
        violated.append("memory")
    if tp_ns > lim.tpot_ns:
        violated.append("tpot")
    if rd_ns > MAX_ROUND_NS or int(table.batch[i]) * int(table.stall_coef[i]) > MAX_STALL_COEF:
        violated.append("round")
    if lim.ttft_ns is not None and ttft > lim.ttft_ns:
        violated.append("ttft")
    gpus, price = int(table.gpus[i]), int(table.price_1e4_usd_per_h[i])
    if lim.demand_tokens_per_s is None:
        replicas = 1
        objective = -(-(price * gpus * rd_ns) // (OBJ_DIVISOR * int(table.batch[i])))
    else:
        replicas = replicas_needed(table, i, rd_ns, lim.demand_tokens_per_s)
        if table.min_replicas is not None:
            if int(table.min_replicas[i]) < 0:
                violated.append("ttft_queue")
            replicas = max(replicas, int(table.min_replicas[i]))
        objective = replicas * gpus * price
    limit = int(table.gpu_limit[i])
    if limit >= 0 and replicas * gpus > limit:
        violated.append("max_gpus")
    if objective > lim.max_objective:
        violated.append("objective_cap")
    return Evaluation(not violated, objective, lim.objective_unit, tp_ns, ttft, dec_stage_ns, pf_stage_ns, replicas,
                      chunk_stage_ns=chunk_stage_ns, round_ns=rd_ns, violated=tuple(violated))


@dataclass
class Bounds:
    """Per-row lower bounds (vectorized) from the perfectly balanced fractional placement."""

    dec_stage_ns: np.ndarray  # slowest stage's decode step
    pf_stage_ns: np.ndarray  # slowest stage's prefill of one prompt
    chunk_stage_ns: np.ndarray  # slowest stage's prefill-chunk increment
    tpot_ns: np.ndarray
    round_ns: np.ndarray  # replica time per token of each sequence, prefill stalls included
    objective: np.ndarray  # in Limits.objective_unit
    replicas: np.ndarray
    memory_ok: np.ndarray
    ttft_ok: np.ndarray
    tpot_ok: np.ndarray
    gpus_ok: np.ndarray

    @property
    def feasible(self) -> np.ndarray:
        return self.memory_ok & self.ttft_ok & self.tpot_ok & self.gpus_ok


def lower_bounds(t: Table, lim: Limits) -> Bounds:
    """Valid lower bounds on each row's integer TPOT and objective over all placements, and necessary conditions
    for memory: every stage holds >= 1 layer and the layers' total memory fits in pp devices.

    Kept on the table for the last `lim` asked (the exact search's steps in search/bounds.py ask again for the same
    table's bounds: computed once); the arrays are read-only, and a table whose `min_replicas` or `gpu_limit` was
    replaced since is computed afresh."""
    memo = t.__dict__.get("_bounds_memo")  # not a dataclass field: dataclasses.replace does not copy it
    if memo is not None and memo[0] == lim and memo[1] is t.min_replicas and memo[2] is t.gpu_limit:
        return memo[3]
    b = _lower_bounds(t, lim)
    for a in vars(b).values():
        a.setflags(write=False)
    t.__dict__["_bounds_memo"] = (lim, t.min_replicas, t.gpu_limit, b)
    return b


def _slowest_stage_ns(t: Table, per_kind: np.ndarray, extra: np.ndarray, single: np.ndarray) -> np.ndarray:
    # Every placement puts each of the model's layers on exactly one stage, so the stages' layer terms sum to
    # Σ_k n_k · t_k whatever the placement: the slowest stage takes at least the balanced share of that total
    # plus the extras. The stage with the largest extra holds at least one layer, of some kind: at least the
    # cheapest kind's t_k more. (One kind: L · t and t + the largest extra.)
    pp = t.pp
    return np.maximum(-(-(per_kind @ t.kind_counts + stage_sum(extra, single, pp)) // pp),
                      stage_max(extra, single, pp) + min_over_kinds(per_kind))


def decode_cycle_ns(t: Table) -> np.ndarray:
    """pp · (slowest decode stage + hop) of `lower_bounds` (its TPOT bound without the prefill stalls), from the
    decode terms only (a `decode_only` table will do)."""
    return t.pp * (_slowest_stage_ns(t, t.dec_ns_per_kind, t.dec_extra_ns, t.dec_extra_single_ns) + t.dec_hop_ns)


def _lower_bounds(t: Table, lim: Limits) -> Bounds:
    counts, pp = t.kind_counts, t.pp

    def slowest_stage_ns(per_kind, extra, single):
        return _slowest_stage_ns(t, per_kind, extra, single)

    dec_stage_ns = slowest_stage_ns(t.dec_ns_per_kind, t.dec_extra_ns, t.dec_extra_single_ns)
    pf_stage_ns = slowest_stage_ns(t.pf_ns_per_kind, t.pf_extra_ns, t.pf_extra_single_ns)
    chunk_stage_ns = slowest_stage_ns(t.chunk_ns_per_kind, t.chunk_extra_ns, t.chunk_extra_single_ns)
    cycle = pp * t.osl * (dec_stage_ns + t.dec_hop_ns)
    # coefficients clamped just past MAX_STALL_COEF (such rows are infeasible) so the products stay inside int64
    users = np.minimum((t.batch - 1) * np.minimum(t.stall_coef, MAX_STALL_COEF + 1), MAX_STALL_COEF + 1)
    prompts = np.minimum(t.batch * np.minimum(t.stall_coef, MAX_STALL_COEF + 1), MAX_STALL_COEF + 1)
    tpot = -(-(cycle + users * (chunk_stage_ns + t.chunk_hop_ns)) // t.osl)
    rnd = -(-(cycle + prompts * (chunk_stage_ns + t.chunk_hop_ns)) // t.osl)
    if t.piped is not None and t.piped.any():  # pipelined stalls (stalled_ns): their own bound
        j = np.flatnonzero(t.piped)
        # where over one chunk stalls per cycle for TPOT (and so for the round) the bound above is stalled_ns' own
        j = j[(t.batch[j] - 1) * (t.stall_coef[j] // pp[j]) <= t.osl]
        pj = pp[j]
        step = pj * (dec_stage_ns[j] + t.dec_hop_ns[j])  # pp · (slowest decode stage + hop), at least
        path = (t.dec_ns_per_kind[j] @ counts + stage_sum(t.dec_extra_ns[j], t.dec_extra_single_ns[j], pj)
                + t.chunk_ns_per_kind[j] @ counts + stage_sum(t.chunk_extra_ns[j], t.chunk_extra_single_ns[j], pj)
                + pj * (t.dec_hop_ns[j] + t.chunk_hop_ns[j]))
        least = slowest_stage_chunk_ns(dec_stage_ns[j], t.dec_ns_per_kind[j], t.dec_extra_ns[j], t.chunk_ns_per_kind[j],
                                       t.chunk_extra_ns[j], pj) + t.chunk_hop_ns[j]
        most = chunk_stage_ns[j] + t.chunk_hop_ns[j]
        chunks = t.stall_coef[j] // pj
        for out, n in ((tpot, t.batch[j] - 1), (rnd, t.batch[j])):
            k = np.minimum(n * np.minimum(chunks, MAX_STALL_COEF + 1), MAX_STALL_COEF + 1)
            out[j] = -(-piped_cycle_floor(t.osl, k, pj, step, path, least, most) // t.osl)
    # a table without memory terms holds rows known to fit (table_of `fits`)
    memory_ok = (np.ones(len(t), bool) if t.mem_kib_per_kind is None else
                 _memory_ok(counts, pp, [m for _, m in t.memory_per_kind], t.fixed_mem_kib, t.fixed_mem_single_kib,
                            t.cap_kib))
    ttft_ok = np.ones(len(t), bool) if lim.ttft_ns is None else t.ttft_ns <= lim.ttft_ns
    tpot_ok = (tpot <= lim.tpot_ns) & (rnd <= MAX_ROUND_NS) & (t.batch * t.stall_coef <= MAX_STALL_COEF)
    if lim.demand_tokens_per_s is None:
        replicas = np.ones(len(t), np.int64)
        objective = -(-(t.price_1e4_usd_per_h * t.gpus * rnd) // (OBJ_DIVISOR * t.batch))
    else:
        replicas = np.maximum(1, -(-(lim.demand_tokens_per_s * rnd) // (t.batch * NS_PER_S)))
        if t.min_replicas is not None:
            replicas = np.maximum(replicas, t.min_replicas)
            ttft_ok = ttft_ok & (t.min_replicas >= 0)
        objective = replicas * t.gpus * t.price_1e4_usd_per_h
    gpus_ok = (t.gpu_limit < 0) | (replicas * t.gpus <= t.gpu_limit)
    gpus_ok &= objective <= lim.max_objective
    return Bounds(dec_stage_ns, pf_stage_ns, chunk_stage_ns, tpot, rnd, objective, replicas, memory_ok, ttft_ok,
                  tpot_ok, gpus_ok)
