"""The decision space: which (GPU, precision, TP, DP, PP, EP, micro-batch) rows a request may choose from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import engines
from ..errors import InputError
from ..perf.estimate import SpecDecode
from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from ..specs.workload import SLO, Workload
from ..units import KV_PRECISIONS, WEIGHT_PRECISIONS

# Defaults keep to precisions that serve a model at its published quality: 16-bit and 8-bit weights (int8 only
# matters where a part has no FP8). 4-bit weights (int4, fp4) are opt-in with --weights.
DEFAULT_WEIGHTS = ("bf16", "fp8", "int8")
DEFAULT_KV = ("bf16", "fp8")
DEFAULT_PP = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)
# Attention data-parallel groups per stage (MoE models only: for a dense model DP groups are just replicas).
DEFAULT_DP = (1, 2, 4, 8, 16, 32)
# Micro-batch sizes (sequences per pipeline micro-batch); the replica batch is pp × micro-batch.
DEFAULT_MICRO_BATCHES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
# The exact space's largest micro-batch: far past what any catalog GPU's memory holds for a real model; it keeps
# the integer model's products (batch × price × time) inside int64.
MAX_MICRO_BATCH = 1 << 20


@dataclass(frozen=True)
class Request:
    model: ModelSpec
    workload: Workload
    slo: SLO
    gpus: tuple[Accelerator, ...]
    weights: tuple[str, ...] = DEFAULT_WEIGHTS
    kv: tuple[str, ...] = DEFAULT_KV
    # None (the exact space): PP any integer from 1 to the layers within the GPU budget, any micro-batch memory
    # allows, TP any divisor of the heads within the scale-up domain (or PCIe host). A tuple pins the choices (the
    # grid of DEFAULT_PP / DEFAULT_MICRO_BATCHES / powers of two is what `grid()` searches).
    pp: tuple[int, ...] | None = None
    micro_batches: tuple[int, ...] | None = None
    tp: tuple[int, ...] | None = None
    dp: tuple[int, ...] = DEFAULT_DP
    ep: tuple[int, ...] | None = None  # pinned EP degrees (None: those ep_options allows)
    batches: tuple[int, ...] | None = None  # pinned replica batches (pp × micro-batch)
    max_gpus: int | None = None
    max_gpus_per_type: dict[str, int] = field(default_factory=dict)
    time_limit_s: float = 30.0
    engine: str | None = None  # only rows this engine runs (planner/engines.py); None: rows any engine runs
    # speculative decoding with this draft and γ for every row (perf.estimate.SpecDecode); None: no draft. The
    # plan decides among drafts and γ by searching once per choice (planner/speculative.py)
    spec: SpecDecode | None = None
    # the disaggregated plan's pools (planner/disagg.py): "exact" (every PP and TP the pins leave open,
    # `disagg.exact_space_pools`) or "grid" (`grid()`'s PP and TP); see `pools_space`
    pool_space: str = "exact"

    def __post_init__(self) -> None:
        if not isinstance(self.gpus, tuple) or not self.gpus or not all(isinstance(g, Accelerator) for g in self.gpus):
            raise InputError("gpus must be a non-empty tuple of catalog accelerators")
        for name, values in (("weights", self.weights), ("kv", self.kv)):
            if not values:
                raise InputError(f"--{name}: give at least one precision")
        for name, values, top in (("tp", self.tp, 4096), ("pp", self.pp, 4096), ("dp", self.dp, 4096),
                                  ("ep", self.ep, 4096), ("micro_batches", self.micro_batches, MAX_MICRO_BATCH),
                                  ("batch", self.batches, MAX_MICRO_BATCH)):
            if values is None:
                continue
            if not values or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= top for v in values):
                raise InputError(f"--{name.replace('_', '-')}: give integers from 1 to {top}, got {values!r}")
        if self.max_gpus is not None and not (isinstance(self.max_gpus, int) and self.max_gpus <= 1 << 20):
            raise InputError(f"--max-gpus must be an integer up to {1 << 20}, got {self.max_gpus!r}")
        for w in self.weights:
            if w not in WEIGHT_PRECISIONS:
                raise InputError(f"--weights: unknown precision {w!r} (choose from {', '.join(WEIGHT_PRECISIONS)})")
        for k in self.kv:
            if k not in KV_PRECISIONS:
                raise InputError(f"--kv: unknown precision {k!r} (choose from {', '.join(KV_PRECISIONS)})")
        if self.max_gpus is not None and self.max_gpus < 1:
            raise InputError(f"--max-gpus must be >= 1, got {self.max_gpus}")
        for g, n in self.max_gpus_per_type.items():
            if n < 0:
                raise InputError(f"--max-gpus-per-type {g}: must be >= 0, got {n}")
        if self.engine is not None and self.engine not in engines.ENGINES_SERVING:
            raise InputError(f"--engine must be one of {', '.join(engines.ENGINES_SERVING)}, got {self.engine!r}")
        if not self.time_limit_s > 0:
            raise InputError(f"--time-limit-s must be > 0, got {self.time_limit_s}")
        if self.pool_space not in POOL_SPACES:
            raise InputError(f"--pool-space must be one of {', '.join(POOL_SPACES)}, got {self.pool_space!r}")

    def grid(self) -> "Request":
        """The request on the grid (DEFAULT_PP, DEFAULT_MICRO_BATCHES, TP powers of two) where it left a choice
        open: the space the fleet's and the disaggregated plan's pools use (`pools_space`)."""
        from dataclasses import replace

        pp = self.pp or DEFAULT_PP
        mbs = self.micro_batches
        if mbs is None and self.batches is not None:  # the pinned batches' micro-batches
            mbs = tuple(sorted({b // q for b in self.batches for q in pp if b % q == 0})) or (1,)
        return replace(self, pp=pp, micro_batches=mbs or DEFAULT_MICRO_BATCHES, tp=self.tp or GRID_TP)

    def gpu_limit(self, gpu: Accelerator) -> int | None:
        limits = [x for x in (self.max_gpus, self.max_gpus_per_type.get(gpu.id)) if x is not None]
        return min(limits) if limits else None


GRID_TP = tuple(1 << i for i in range(0, 8))
# the spaces the disaggregated and fleet pools may be searched over (`pools_space`, `planner plan/fleet --pool-space`)
POOL_SPACES = ("grid", "exact")


def pools_space(req: Request) -> str:
    """The space candidate pools (disaggregated prefill/decode, fleet) are proven optimal over: `Request.grid`'s
    rows, so "grid" unless the request pins TP, PP and the batch (then "pinned", as the plan JSON's
    solver.space names them). With `pool_space="exact"` and no pinned batch or micro-batch (`exact_pools` takes
    none), the disaggregated pools are every PP depth and TP degree with every micro-batch: "exact", or "pinned"
    where TP or PP is pinned (the pins hold; the rest is every integer, as the colocated search's "pinned")."""
    if req.pool_space == "exact" and req.micro_batches is None and req.batches is None:
        return "exact" if req.tp is None and req.pp is None else "pinned"
    pinned = req.tp is not None and req.pp is not None and (req.micro_batches is not None or req.batches is not None)
    return "pinned" if pinned else "grid"


def tp_options(model: ModelSpec, gpu: Accelerator, tp: Sequence[int] | None) -> list[int]:
    """TP degrees (every one when `tp` is None) that divide the attention heads and that one scale-up domain, or
    one PCIe host where the part has no fabric, can hold (Accelerator.intra_node_link)."""
    if tp is None:
        tp = range(1, gpu.node_gpus + 1)
    return [t for t in tp if model.num_heads % t == 0 and gpu.intra_node_link(t) is not None]


def dp_options(model: ModelSpec, dp: Sequence[int]) -> list[int]:
    """Attention DP degrees: only MoE models gain from DP groups inside one replica (they share the experts)."""
    return list(dp) if model.is_moe else [1]


def ep_options(model: ModelSpec, tp: int, dp: int = 1, pinned: Sequence[int] | None = None) -> list[int]:
    """EP degrees: with DP = 1, 1 or a power of two dividing both TP and the expert count (experts split evenly).
    With DP > 1 the groups exist to share the experts, and the search gives them the widest EP the experts allow:
    the largest power of two dividing both TP × DP and E (every GPU its own expert rank when E allows, as DeepSeek,
    SGLang and TensorRT-LLM run attention DP; `estimate --ep` takes any EP dividing TP × DP)."""
    if not model.is_moe:
        return [1]
    n = tp * dp
    fits = [e for e in (1 << i for i in range(0, 13)) if e <= n and n % e == 0 and model.num_experts % e == 0]
    if dp > 1:
        fits = [max(fits)] if max(fits) >= dp else []
    return fits if pinned is None else [e for e in fits if e in pinned]


@dataclass(frozen=True)
class Row:
    """One structural choice; the micro-batch and the layer placement are chosen on top of it."""

    gpu: Accelerator
    weights: str
    kv: str
    tp: int
    pp: int
    ep: int
    micro_batch: int
    dp: int = 1

    @property
    def gpus(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def batch(self) -> int:
        return self.pp * self.micro_batch


class Shapes(Sequence):
    """`enumerate_shapes`' shapes, each made when read (a large MoE space lists ~10^5 shapes that the search reads
    by number, a few one by one). Also knows each shape's group (`group_key`): `group[i]` numbers shape i's group
    in order of first appearance (so the searches that work per group need not re-key the shapes one by one),
    `pp[i]` its depth and `reps[g]` group g's shape at PP 1."""

    def __init__(self, reps: list[Row], group: np.ndarray, pp: np.ndarray):
        self.reps, self.group, self.pp = reps, group, pp

    def __len__(self) -> int:
        return len(self.group)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        r = object.__new__(Row)  # Row(…, pp, …) of the group's shape without the frozen dataclass's setattr
        r.__dict__.update(self.reps[self.group[i]].__dict__, pp=int(self.pp[i]))
        return r

    def __iter__(self):
        reps, new = self.reps, object.__new__
        for g, pp in zip(self.group.tolist(), self.pp.tolist()):
            r = new(Row)
            r.__dict__.update(reps[g].__dict__, pp=pp)
            yield r

    def __eq__(self, other) -> bool:  # equal to a sequence of the same rows, as the list it replaces was
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Shapes({len(self)} shapes of {len(self.reps)} groups)"


def enumerate_shapes(req: Request, depths: dict[tuple, int] | None = None) -> Shapes:
    """Every structurally valid shape (a row without its micro-batch; micro_batch = 1 stands in), in a fixed order
    (GPU id, weights, kv, tp, dp, pp, ep): PP from the request's list or every integer from 1 to min(layers, the
    GPU budget / (TP·DP)). `depths`: per group (`group_key`), the deepest PP to list (a group not in it: none);
    None: every depth of every group."""
    supported = _support_check(req)
    reps: list[Row] = []  # per listed group (GPU, weights, KV, TP, DP, EP), in the loops' order
    block: list[int] = []  # per group, its (GPU, weights, KV, TP, DP) block: groups of a block interleave by PP
    depths_of: list[np.ndarray] = []  # per group, the depths it lists
    order_of: list[np.ndarray] = []  # per group, each depth's place in the request's PP list
    for k, (gpu, w, kv, tp, dp, pps, eps) in enumerate(_shape_loops(req)):
        for ep in eps:
            d = (len(pps) and max(pps)) if depths is None else depths.get((gpu.id, w, kv, tp, dp, ep), 0)
            if not d:
                continue
            # the engine's answer depends on the PP depth only through whether there are stages (_support_check)
            one = supported(gpu.id, w, kv, tp, 1, ep, dp)
            many = d > 1 and supported(gpu.id, w, kv, tp, 2, ep, dp)
            if isinstance(pps, range):  # 1 … top
                q = np.arange(1 if one else 2, (min(d, len(pps)) if many else 1) + 1, dtype=np.int64)
                at = q
            else:  # deeper than the group may go, or a depth the engine cannot run, left out
                kept = [(j, v) for j, v in enumerate(pps) if v <= d and (one if v == 1 else many)]
                q = np.array([v for _, v in kept], np.int64)
                at = np.array([j for j, _ in kept], np.int64)
            if len(q):
                reps.append(Row(gpu, w, kv, tp, 1, ep, 1, dp))
                block.append(k)
                depths_of.append(q)
                order_of.append(at)
    counts = np.array([len(q) for q in depths_of], np.int64)
    col = np.repeat(np.arange(len(reps), dtype=np.int64), counts)
    pp = np.concatenate(depths_of) if depths_of else np.zeros(0, np.int64)
    at = np.concatenate(order_of) if order_of else np.zeros(0, np.int64)
    # the loops' order: block, then the place in the PP list, then the EP degree (the groups' order in the block)
    order = np.lexsort((col, at, np.asarray(block, np.int64)[col]))
    col, pp = col[order], pp[order]
    # groups numbered by first appearance in that order
    first = np.full(len(reps), len(col), np.int64)
    np.minimum.at(first, col, np.arange(len(col)))
    rank = np.argsort(first, kind="stable")
    number = np.empty(len(reps), np.int64)
    number[rank] = np.arange(len(reps))
    return Shapes([reps[i] for i in rank.tolist()], number[col], pp)


def group_key(r: Row) -> tuple:
    """A shape's group: the shape without its PP depth (GPU, weights, KV, TP, DP, EP)."""
    return (r.gpu.id, r.weights, r.kv, r.tp, r.dp, r.ep)


def shape_group_index(shapes: Sequence[Row]) -> np.ndarray:
    """Each shape's group (`group_key`) as a number, in order of first appearance (`Shapes.group` where the list
    knows it)."""
    group = getattr(shapes, "group", None)
    if group is not None:
        return group
    ids: dict[tuple, int] = {}
    return np.fromiter((ids.setdefault(group_key(r), len(ids)) for r in shapes), np.int64, len(shapes))


def shape_groups(req: Request) -> list[Row]:
    """One shape per group (`group_key`) that `enumerate_shapes` lists depths of, PP = 1 standing in for them
    (engine support aside: a stand-in for the group's terms, not a candidate), in its order."""
    return [Row(gpu, w, kv, tp, 1, ep, 1, dp) for gpu, w, kv, tp, dp, pps, eps in _shape_loops(req) if pps
            for ep in eps]


def _shape_loops(req: Request):
    """(GPU, weights, KV, TP, DP, PP depths, EP degrees) in enumerate_shapes' order."""
    L = req.model.num_layers
    eps_of: dict[tuple[int, int], list[int]] = {}  # the EP degrees a (TP, DP) allows
    dps = dp_options(req.model, req.dp)
    for gpu in req.gpus:
        limit = req.gpu_limit(gpu)
        tps = tp_options(req.model, gpu, req.tp)
        for w in _weights(req, gpu):
            for kv in req.kv:
                for tp in tps:
                    if req.spec is not None and req.spec.draft.num_heads % tp:
                        continue  # the draft runs TP-way on the same GPUs
                    for dp in dps:
                        top = L if limit is None else min(L, limit // (tp * dp))
                        pps = range(1, top + 1) if req.pp is None else [q for q in req.pp if q <= top]
                        eps = eps_of.get((tp, dp))
                        if eps is None:
                            eps = eps_of[(tp, dp)] = ep_options(req.model, tp, dp, req.ep)
                        yield gpu, w, kv, tp, dp, pps, eps


def _support_check(req: Request):
    """`engines.row_supported` for the request's engine, asked once per (GPU, precisions, TP, features used):
    the answer depends on the shape only through the features (engines.layout_features), not on the PP degree
    or the micro-batch, so a search of tens of thousands of shapes asks it a few hundred times."""
    draft = req.spec is not None
    known: dict[tuple, bool] = {}
    features: dict[tuple, tuple] = {}

    def supported(gpu_id: str, w: str, kv: str, tp: int, pp: int, ep: int, dp: int) -> bool:
        f = features.get((pp, ep, dp))
        if f is None:
            f = features[(pp, ep, dp)] = engines.layout_features(pp, ep, dp, draft)
        key = (gpu_id, w, kv, tp, f)
        ok = known.get(key)
        if ok is None:
            ok = known[key] = engines.row_supported(req.engine, gpu_id, w, kv, tp, pp, ep, dp, draft)
        return ok

    return supported


def count_shapes(req: Request) -> int:
    """How many shapes `enumerate_shapes` would list, counted without listing them (engine filters aside: an
    upper bound)."""
    n, L = 0, req.model.num_layers
    for gpu in req.gpus:
        limit = req.gpu_limit(gpu)
        per_tp = len(_weights(req, gpu)) * len(req.kv)
        for tp in tp_options(req.model, gpu, req.tp):
            for dp in dp_options(req.model, req.dp):
                top = L if limit is None else min(L, limit // (tp * dp))
                pps = top if req.pp is None else sum(1 for q in req.pp if q <= top)
                n += per_tp * pps * len(ep_options(req.model, tp, dp, req.ep))
    return n


def _weights(req: Request, gpu: Accelerator) -> list[str]:
    out = []
    for w in req.weights:
        if not gpu.supports_weights(w):
            continue
        if (w == "int8" and "fp8" in req.weights and gpu.supports_weights("fp8")
                and gpu.flops_per_s["int8"] <= gpu.flops_per_s["fp8"]):
            continue  # same bytes as fp8 and no faster: int8 rows would only duplicate fp8 rows
        out.append(w)
    return out


def enumerate_rows(req: Request, max_batch: int) -> "RowList":
    """Every structurally valid row of the request's grid (`Request.grid`), in a fixed order (GPU id, weights,
    kv, tp, dp, pp, ep, micro-batch), as a RowList (its rows made when read). A micro-batch splits evenly over
    the DP groups."""
    req = req.grid()
    shapes: list[Row] = []
    mbs_of: list[list[int]] = []
    mbs_of_pp_dp: dict[tuple[int, int], list[int]] = {}  # the micro-batches a (PP, DP) allows
    eps_of: dict[tuple[int, int], list[int]] = {}  # the EP degrees a (TP, DP) allows
    L = req.model.num_layers
    supported = _support_check(req)
    for gpu in req.gpus:
        limit = req.gpu_limit(gpu)
        tps = tp_options(req.model, gpu, req.tp)
        for w in _weights(req, gpu):
            for kv in req.kv:
                for tp in tps:
                    if req.spec is not None and req.spec.draft.num_heads % tp:
                        continue  # the draft runs TP-way on the same GPUs
                    for dp in dp_options(req.model, req.dp):
                        eps = eps_of.get((tp, dp))
                        if eps is None:
                            eps = eps_of[(tp, dp)] = ep_options(req.model, tp, dp, req.ep)
                        for pp in req.pp:
                            if pp > L or (limit is not None and tp * dp * pp > limit):
                                continue
                            mbs = mbs_of_pp_dp.get((pp, dp))
                            if mbs is None:
                                mbs = mbs_of_pp_dp[(pp, dp)] = [
                                    mb for mb in req.micro_batches if pp * mb <= max_batch and mb % dp == 0
                                    and (req.batches is None or pp * mb in req.batches)]
                            for ep in eps:
                                if not supported(gpu.id, w, kv, tp, pp, ep, dp):
                                    continue  # the engine cannot run this shape
                                if mbs:
                                    shapes.append(Row(gpu, w, kv, tp, pp, ep, 1, dp))
                                    mbs_of.append(mbs)
    counts = [len(m) for m in mbs_of]
    return RowList(shapes, np.repeat(np.arange(len(shapes), dtype=np.int64), counts),
                   np.fromiter((mb for m in mbs_of for mb in m), np.int64, sum(counts)))


class RowList(Sequence):
    """Rows given as shapes (rows without their micro-batch, micro_batch = 1 standing in), each row's shape index
    and micro-batch: a `Row` is made only when asked for (a search table may hold hundreds of thousands of rows
    that nothing reads one by one); per-row facts of the shape come from `per_row` without making any. Compares
    equal to a sequence of the same rows."""

    def __init__(self, shapes: Sequence[Row], shape_index: np.ndarray, micro_batch: np.ndarray):
        self.shapes, self.shape_index, self.micro_batch = shapes, shape_index, micro_batch

    def __len__(self) -> int:
        return len(self.shape_index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.shapes[int(self.shape_index[i])]
        return Row(s.gpu, s.weights, s.kv, s.tp, s.pp, s.ep, int(self.micro_batch[i]), s.dp)

    def __iter__(self):
        shapes = self.shapes
        for k, mb in zip(self.shape_index.tolist(), self.micro_batch.tolist()):
            s = shapes[k]
            yield Row(s.gpu, s.weights, s.kv, s.tp, s.pp, s.ep, mb, s.dp)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"RowList({len(self)} rows of {len(self.shapes)} shapes)"


def per_row(rows: Sequence[Row], f: Callable[[Row], Any]) -> np.ndarray:
    """`f(row)` for every row as an array; for a RowList, `f` of each shape (f must not read the micro-batch)."""
    if isinstance(rows, RowList):
        return np.array([f(s) for s in rows.shapes])[rows.shape_index]
    return np.array([f(r) for r in rows])


def shape_ids(rows: Sequence[Row]) -> np.ndarray:
    """Each row's shape as a number: rows that differ only in the micro-batch share it."""
    key = lambda r: (r.gpu.id, r.weights, r.kv, r.tp, r.dp, r.pp, r.ep)  # noqa: E731
    ids: dict[tuple, int] = {}
    if isinstance(rows, RowList):
        return np.array([ids.setdefault(key(s), len(ids)) for s in rows.shapes], np.int64)[rows.shape_index]
    return np.array([ids.setdefault(key(r), len(ids)) for r in rows], np.int64)
