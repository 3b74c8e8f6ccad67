"""Step time of one training iteration for a layout, and the run's MFU, tokens/s, days, GPU-hours and cost.

One step processes G tokens = B sequences of s tokens. Each of the d·c data-parallel × context-parallel pipelines
runs m = B / (d·b) micro-batches of b sequences through p stages under the 1F1B schedule (Narayanan et al. 2021,
arXiv:2104.04473, section 2.2.1):

    step = (m + p − 1) · t_mb + exposed DP sync,         bubble fraction (p − 1) / (m + p − 1)
    t_mb = compute + TP collectives + EP all-to-alls + CP exchanges + pipeline send/recv   (one stage, fwd + bwd)

compute = hardware FLOPs on the fullest stage / (peak · η_family), η fitted per accelerator family on published
runs (planner/train/calibrate.py). TP collectives (Megatron with sequence parallelism) and EP all-to-alls run in
the scale-up domain (EP spills to the scale-out network when t·e exceeds it) and are not overlapped with compute.
The DP gradient reduce-scatter (and ZeRO's parameter all-gather) crosses the scale-out network; it overlaps with
the backward pass of the last micro-batch, the only overlap 1F1B leaves (the other micro-batches' gradients
accumulate locally). ZeRO-3 re-gathers the weights for every micro-batch's forward and backward, overlapped with
that micro-batch's compute.

Every function is vectorized over numpy arrays (the search table) and works on scalars (`estimate`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..specs.accelerator import Accelerator
from ..specs.model import ModelSpec
from .flops import hardware_flops_per_token, model_flops_per_token
from .memory import ACT_BYTES, GRAD_BYTES, WEIGHT_BYTES, activation_bytes, layers_on_stage, model_state_bytes, \
    params_per_gpu

SECONDS_PER_DAY = 86_400.0
TP_COLLECTIVES_PER_LAYER = 4  # Megatron-SP: 2 all-gathers + 2 reduce-scatters forward, as many backward, each
#   half an all-reduce: 4 all-reduce equivalents per layer per micro-batch (Narayanan et al. 2021, section 3.2)
EP_ALL_TO_ALLS_PER_LAYER = 4  # dispatch + combine forward, and their transposes backward
RECOMPUTE_EXTRA_FORWARD = {"none": 0.0, "selective": 0.0, "full": 0.5}  # full: forward collectives once more
#   (the recomputed forward repeats its 2 of the 4 TP collectives and EP all-to-alls: 4 -> 6)


@dataclass(frozen=True)
class Layout:
    """One training layout: GPUs = tp · pp · dp · cp."""
    gpu: Accelerator
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1  # expert-parallel ranks, carved from the dp·cp data-parallel ranks
    cp: int = 1  # context parallelism: each sequence split over cp GPUs
    zero: int = 1  # ZeRO stage 0-3
    recompute: str = "selective"  # none | selective | full
    micro_batch: int = 1  # sequences per micro-batch

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp


@dataclass(frozen=True)
class Link:
    """The communication assumptions shared with the inference model (catalog/perf.toml)."""
    efficiency: float  # fraction of per-direction link bandwidth collectives reach
    latency_s: float  # per collective inside the scale-up domain (perf.allreduce_latency_s)
    hop_latency_s: float  # per ring step across the scale-out network (perf.p2p_latency_s)


def ring_allreduce_s(nbytes, ranks, bytes_per_s, hop_latency_s=0.0):
    """Ring all-reduce of `nbytes` over `ranks` GPUs: 2·(r−1)·α + 2·(r−1)/r · bytes / bandwidth (Patarasuk &
    Yuan 2009, "Bandwidth optimal all-reduce algorithms"; a reduce-scatter or an all-gather is half of it)."""
    r = np.asarray(ranks, float)
    return 2.0 * (r - 1.0) * hop_latency_s + 2.0 * (r - 1.0) / r * nbytes / bytes_per_s


def all_to_all_s(nbytes, ranks, bytes_per_s):
    """All-to-all where each GPU holds `nbytes` and keeps 1/r of it: (r−1)/r · bytes / bandwidth."""
    r = np.asarray(ranks, float)
    return (r - 1.0) / r * nbytes / bytes_per_s


MAX_VIRTUAL_STAGES = 4  # interleaved 1F1B chunks per GPU considered (assumption; Megatron-LM's
#   --num-layers-per-virtual-pipeline-stage; Narayanan et al. 2021 section 2.2.2)


def virtual_stages(layers_per_stage, pp, micro_batches):
    """Model chunks per GPU under the interleaved 1F1B schedule (Narayanan et al. 2021, section 2.2.2): the
    largest v ≤ MAX_VIRTUAL_STAGES dividing the layers on a stage, where Megatron allows interleaving (p > 1 and m a
    multiple of p); 1 otherwise. It shrinks the bubble to (p − 1)/(v·m + p − 1) and multiplies the pipeline
    sends by v; with v = 1 this is plain 1F1B's (p − 1)/(m + p − 1)."""
    lay = np.asarray(layers_per_stage, float)
    pp, mbs = np.asarray(pp, float), np.asarray(micro_batches, float)
    v = np.ones(np.broadcast(lay, pp, mbs).shape)
    for k in range(2, MAX_VIRTUAL_STAGES + 1):
        v = np.where(np.mod(lay, k) == 0, k, v)
    allowed = (pp > 1) & (np.mod(mbs, np.maximum(pp, 1.0)) == 0)
    return np.where(allowed, v, 1.0)


def dp_latency_s(ranks, inside, link: Link):
    """Latency of one hierarchical data-parallel collective: one in-domain collective, plus 2·⌈log2 o⌉ steps
    across the o = r / inside domains (NCCL switches from rings to trees / recursive doubling when latency dominates;
    Thakur, Rabenseifner & Gropp 2005, "Optimization of collective communication operations in MPICH")."""
    outside = np.maximum(np.asarray(ranks, float) / np.minimum(inside, ranks), 1.0)
    return link.latency_s + 2.0 * np.ceil(np.log2(outside)) * link.hop_latency_s


def dp_allreduce_s(nbytes, ranks, inside, up_bytes_per_s, out_bytes_per_s, link: Link):
    """Hierarchical all-reduce of `nbytes` over `ranks` data-parallel GPUs of which `inside` share a scale-up
    domain (NCCL's and TPU pods' two-level scheme): reduce-scatter + all-gather inside the domain over the
    scale-up link, and a ring all-reduce of the 1/inside shard across domains over the scale-out network:
    2·(i−1)/i·n/B_up + 2·(o−1)/o·(n/i)/B_out + latency, i = min(inside, r), o = r / i."""
    r = np.asarray(ranks, float)
    i = np.minimum(np.asarray(inside, float), r)
    o = np.maximum(r / i, 1.0)
    return (ring_allreduce_s(nbytes, i, up_bytes_per_s) + ring_allreduce_s(nbytes / i, o, out_bytes_per_s)
            + dp_latency_s(r, i, link))


def step_terms(m: ModelSpec, seq_len: int, global_batch_seqs: int, *, tp, pp, dp, ep, cp, zero, recompute,
               micro_batch, peak_flops_per_s, flops_efficiency, domain, scale_up_bytes_per_s,
               scale_out_bytes_per_s, link: Link) -> dict:
    """Every term of the step time (seconds) and memory (bytes) for arrays of layouts (or scalars)."""
    tp, pp, dp, ep, cp, zero, b = (np.asarray(v, float) for v in (tp, pp, dp, ep, cp, zero, micro_batch))
    rc = np.asarray(recompute)
    s, h, L = float(seq_len), float(m.hidden_size), m.num_layers
    gpus = tp * pp * dp * cp
    mbs = global_batch_seqs / (dp * b)  # m: micro-batches per pipeline per step
    tokens_mb = b * s  # tokens in one micro-batch (over its c context-parallel GPUs)
    lay = layers_on_stage(m, pp)
    # compute: the fullest stage's share of the micro-batch's hardware FLOPs, on t·c GPUs
    hw_tok = np.where(rc == "full", hardware_flops_per_token(m, seq_len, "full"),
                      np.where(rc == "selective", hardware_flops_per_token(m, seq_len, "selective"),
                               hardware_flops_per_token(m, seq_len, "none")))
    compute = hw_tok * tokens_mb * (lay / L) / (tp * cp) / (peak_flops_per_s * flops_efficiency)
    repeat = 1.0 + np.where(rc == "full", RECOMPUTE_EXTRA_FORWARD["full"], 0.0)
    up = scale_up_bytes_per_s * link.efficiency
    out = scale_out_bytes_per_s * link.efficiency
    # TP: all-reduce equivalents of the micro-batch's b·s/c × h activations per layer
    act_mb = tokens_mb / cp * h * ACT_BYTES
    tp_s = np.where(tp > 1, lay * TP_COLLECTIVES_PER_LAYER * repeat
                    * (ring_allreduce_s(act_mb, tp, up) + link.latency_s), 0.0)
    # EP: top-k copies of each token's h-vector dispatched and combined; tokens are sharded over t (SP)
    moe_layers = lay * m.moe_layer_fraction
    ep_bw = np.where(tp * ep <= domain, up, out)
    ep_s = np.where(ep > 1, moe_layers * EP_ALL_TO_ALLS_PER_LAYER * repeat
                    * (all_to_all_s(act_mb / tp * max(m.experts_per_token, 1), ep, ep_bw) + link.latency_s), 0.0)
    # CP: each rank all-gathers the other ranks' K and V (and reduce-scatters their gradients backward)
    kv_mb = tokens_mb / cp * m.kv_elements_per_token_per_layer * ACT_BYTES / tp
    cp_bw = np.where(tp * cp <= domain, up, out)
    cp_s = np.where(cp > 1, lay * 2.0 * repeat * (cp - 1.0) * (kv_mb / cp_bw + link.latency_s), 0.0)
    # PP: one activation forward and one gradient backward per micro-batch between stages
    pp_bw = np.where(tp * pp <= domain, up, out)
    pp_s = np.where(pp > 1, 2.0 * (act_mb / tp / pp_bw + link.latency_s), 0.0)
    v = virtual_stages(lay, pp, mbs)
    pp_s = pp_s * v  # interleaving sends v times as often
    t_mb = compute + tp_s + ep_s + cp_s + pp_s
    pipeline_s = (mbs + (pp - 1.0) / v) * t_mb
    bubble = (pp - 1.0) / (v * mbs + pp - 1.0)
    # DP: gradient sync of dense weights over d·c ranks, expert weights over d·c/e ranks (bf16)
    dense_params, expert_params = params_per_gpu(m, tp, pp, ep)
    dp_dense, dp_expert = dp * cp, dp * cp / ep
    inside = np.maximum(1.0, domain / (tp * pp * cp))  # DP ranks that share one scale-up domain
    grad_sync = (dp_allreduce_s(dense_params * GRAD_BYTES, dp_dense, inside, up, out, link)
                 + dp_allreduce_s(expert_params * GRAD_BYTES, dp_expert, inside, up, out, link))
    # ZeRO-3: all-gather the weights for forward and again for backward, every micro-batch, layer by layer:
    # two all-gathers move one all-reduce's traffic, and each of the 2·⌈L/p⌉ per-layer gathers pays the latency
    expert_lat = np.where(dp_expert > 1, dp_latency_s(dp_expert, inside, link), 0.0)
    gather_mb = (dp_allreduce_s(dense_params * WEIGHT_BYTES, dp_dense, inside, up, out, link)
                 + dp_allreduce_s(expert_params * WEIGHT_BYTES, dp_expert, inside, up, out, link)
                 + (2.0 * lay - 1.0) * (dp_latency_s(dp_dense, inside, link) + expert_lat))
    backward_window = compute * (2.0 / 3.0)  # backward of the last micro-batch
    exposed_sync = np.maximum(grad_sync - backward_window, 0.0)
    exposed_gather = np.where(zero >= 3, mbs * np.maximum(gather_mb - compute, 0.0), 0.0)
    dp_exposed = np.where(dp * cp > 1, exposed_sync + exposed_gather, 0.0)
    step = pipeline_s + dp_exposed
    # memory
    w_d, g_d, o_d = model_state_bytes(dense_params, dp_dense, zero)
    w_e, g_e, o_e = model_state_bytes(expert_params, dp_expert, zero)
    # interleaving keeps (1 + (p−1)/(p·v)) times the 1F1B activations on the first stage (Korthikanti et al. 2022,
    # section 4.2.3)
    acts = activation_bytes(m, seq_len, b, tp, pp, cp, mbs, rc) * np.where(
        v > 1, 1.0 + (pp - 1.0) / (pp * v), 1.0)
    return {
        "gpus": gpus, "micro_batches": mbs, "compute_s": compute, "tp_comm_s": tp_s, "ep_comm_s": ep_s,
        "cp_comm_s": cp_s, "pp_p2p_s": pp_s, "micro_batch_s": t_mb, "pipeline_s": pipeline_s,
        "bubble_fraction": bubble, "virtual_stages": v,
        "dp_comm_s": grad_sync + np.where(zero >= 3, mbs * gather_mb, 0.0),
        "dp_exposed_s": dp_exposed, "step_s": step,
        "weights_bytes": w_d + w_e, "gradients_bytes": g_d + g_e, "optimizer_bytes": o_d + o_e,
        "activations_bytes": acts, "memory_bytes": w_d + w_e + g_d + g_e + o_d + o_e + acts,
    }


def run_metrics(m: ModelSpec, seq_len: int, global_batch_tokens: int, tokens: float, step_s, gpus,
                peak_flops_per_s, usd_per_gpu_hour, goodput: float, recompute) -> dict:
    """The run's figures from its step time:
    tokens/s = G / step;  MFU = model FLOPs per token · tokens/s / (GPUs · peak)  (PaLM appendix B; HFU likewise
    with hardware FLOPs);  days = D / (tokens/s · goodput) / 86,400;  GPU-hours = GPUs · days · 24;
    cost = GPU-hours · $/GPU-hour."""
    tps = global_batch_tokens / np.asarray(step_s, float)
    peak = np.asarray(gpus, float) * peak_flops_per_s
    rc = np.asarray(recompute)
    hw = np.where(rc == "full", hardware_flops_per_token(m, seq_len, "full"),
                  np.where(rc == "selective", hardware_flops_per_token(m, seq_len, "selective"),
                           hardware_flops_per_token(m, seq_len, "none")))
    days = tokens / (tps * goodput) / SECONDS_PER_DAY
    gpu_hours = np.asarray(gpus, float) * days * 24.0
    return {"tokens_per_s": tps, "mfu": model_flops_per_token(m, seq_len) * tps / peak, "hfu": hw * tps / peak,
            "days": days, "gpu_hours": gpu_hours, "usd_total": gpu_hours * usd_per_gpu_hour,
            "usd_per_hour": np.asarray(gpus, float) * usd_per_gpu_hour}
