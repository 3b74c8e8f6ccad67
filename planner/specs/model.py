"""`ModelSpec`: the architecture facts the performance model needs, built from a Hugging Face `config.json`.

Supported families (by the keys their configs use):
- dense decoder (Llama, Mistral, Qwen2/3, Phi-3, Gemma-2/3, GPT-2/3 style): MHA, GQA or MQA attention;
- Mixtral-style MoE (`num_local_experts`), gpt-oss, Qwen-MoE (`num_experts`, `moe_intermediate_size`, shared
  expert, `decoder_sparse_step`, `mlp_only_layers`), DeepSeek-V2/V3 and Kimi-K2 (`n_routed_experts`,
  `n_shared_experts`, dense-first layers `first_k_dense_replace`) with multi-head latent attention (MLA,
  `kv_lora_rank`), Llama-4 (a shared expert, MoE layers interleaved by `interleave_moe_layer_step`, dense layers of
  `intermediate_size_mlp`).

Each layer has a kind (`LayerKind`): its MLP (dense or MoE) and its attention span: full, sliding window
(`layer_types`, Gemma-2's alternation, Gemma-3's `sliding_window_pattern`, Qwen's `max_window_layers`, or every
layer as Mistral-7B and Phi-3) or chunked (Llama-4's RoPE layers, `attention_chunk_size`). The checkpoint's own
quantization (`quantization_config`) is recorded as `native_weights`, the default weight precision.

Parameter-counting convention (what `total_params` / `active_params` mean): every weight the checkpoint holds for
the served text model: attention projections, MLPs, experts, shared experts and routers, norms, biases (where the
family has them), attention sinks, the input embedding (and a learned position table), the LM head (once when
tied). Not counted: a multimodal wrapper's vision tower, DeepSeek-V3's multi-token-prediction module
(`num_nextn_predict_layers`, not part of the served main model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..files import read_json
from ..numbers import is_number
from ..text import check_text

GATED_ACTIVATIONS = {"silu", "swish", "swiglu", "geglu", "gelu_pytorch_tanh_gated"}
ATTENTION_KINDS = ("mha", "gqa", "mqa", "mla")


LAYER_MLPS = ("dense", "moe")
LAYER_ATTENTIONS = ("full", "sliding", "chunked")


@dataclass(frozen=True)
class LayerKind:
    """What one decoder layer is. mlp: "dense" (one MLP) or "moe" (routed experts, shared experts, router).
    attention: "full" (every earlier token), "sliding" (the last `window` tokens: Mistral, Gemma-2/3, gpt-oss) or
    "chunked" (the tokens of the current `window`-token chunk: Llama-4's local layers)."""

    mlp: str = "dense"
    attention: str = "full"
    window: int = 0  # tokens (0 for full attention)

    def __post_init__(self) -> None:
        if self.mlp not in LAYER_MLPS or self.attention not in LAYER_ATTENTIONS:
            raise ValueError(f"unknown layer kind {self.mlp}/{self.attention}")
        if (self.attention == "full") != (self.window == 0) or self.window < 0:
            raise ValueError(f"{self.attention} attention needs a positive window only when not full: {self.window}")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_context: int
    mlp_gated: bool
    dense_intermediate_size: int  # MLP width of dense layers (0 when every layer is MoE)
    num_dense_layers: int  # layers with a dense MLP; the rest are MoE layers
    tie_word_embeddings: bool = False
    # MoE (num_experts == 0 for dense models)
    num_experts: int = 0
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate (h -> 1) scales the shared expert's output
    # MLA (DeepSeek); kv_lora_rank == 0 for standard attention
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # per-layer kinds in layer order; () = the first num_dense_layers dense, the rest MoE, all full attention
    layer_kinds: tuple[LayerKind, ...] = ()
    # small weights outside the matrices (each counted where the checkpoint has it)
    norms_per_layer: int = 2  # RMS/Layer norms per layer (Gemma-2/3: 4, before and after attention and MLP)
    norm_bias: bool = False  # LayerNorm with a bias (GPT-2) doubles each norm's weights
    qk_norm: bool = False  # per-head RMS norms of q and k with weights (Qwen3, Gemma-3): 2 · head_dim per layer
    attention_bias_params: int = 0  # per layer: q/k/v (and o) projection biases
    attention_sinks: bool = False  # gpt-oss: one learned sink logit per head and layer (no KV)
    mlp_bias: bool = False  # biases on MLP / expert projections and the router (GPT-2, gpt-oss)
    position_embeddings: int = 0  # rows of a learned absolute position table (GPT-2: n_positions)
    # the checkpoint's own quantization (quantization_config): "" for a 16-bit checkpoint
    native_weights: str = ""
    native_quant_scope: str = "all"  # "all" layers' matrices, or only the routed "experts" (gpt-oss MXFP4)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.layer_kinds:
            kinds = (LayerKind("dense"),) * self.num_dense_layers + (LayerKind("moe"),) * self.num_moe_layers
            object.__setattr__(self, "layer_kinds", kinds)
        if len(self.layer_kinds) != self.num_layers or \
                sum(k.mlp == "dense" for k in self.layer_kinds) != self.num_dense_layers:
            raise ValueError(f"{self.name}: layer_kinds must list {self.num_layers} layers, "
                             f"{self.num_dense_layers} of them dense")

    # ---- structure -------------------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers

    def layer_kind_counts(self) -> dict[LayerKind, int]:
        """How many layers of each kind, in order of first appearance (deterministic)."""
        counts: dict[LayerKind, int] = {}
        for k in self.layer_kinds:
            counts[k] = counts.get(k, 0) + 1
        return counts

    @property
    def attention_kind(self) -> str:
        if self.kv_lora_rank:
            return "mla"
        if self.num_kv_heads == self.num_heads:
            return "mha"
        if self.num_kv_heads == 1:
            return "mqa"
        return "gqa"

    @property
    def _mlp_matrices(self) -> int:
        # a gated MLP (SwiGLU) has gate, up and down projections; a plain one has up and down
        return 3 if self.mlp_gated else 2

    def _mlp_params(self, intermediate: int) -> int:
        """One MLP of width `intermediate`: its matrices, plus biases (gate/up: intermediate each, down: h)."""
        h = self.hidden_size
        bias = (self._mlp_matrices - 1) * intermediate + h if self.mlp_bias else 0
        return self._mlp_matrices * h * intermediate + bias

    # ---- parameter counts (elements) -------------------------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        """Attention weights of one layer: projections (plus MLA's latent norms), biases, q/k norms, sinks."""
        h, nh = self.hidden_size, self.num_heads
        extra = self.attention_bias_params + (2 * self.head_dim if self.qk_norm else 0) \
            + (nh if self.attention_sinks else 0)
        if self.kv_lora_rank:
            qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * nh * qk_dim
            else:
                q = h * nh * qk_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * nh * (self.qk_nope_head_dim + self.v_head_dim)
            o = nh * self.v_head_dim * h
            return q + kv_a + kv_b + o + extra
        hd = self.head_dim
        return h * nh * hd + 2 * h * self.num_kv_heads * hd + nh * hd * h + extra

    @property
    def norm_params_per_layer(self) -> int:
        return self.norms_per_layer * self.hidden_size * (2 if self.norm_bias else 1)

    @property
    def dense_mlp_params(self) -> int:
        """One dense layer's MLP."""
        return self._mlp_params(self.dense_intermediate_size)

    @property
    def expert_params(self) -> int:
        """One routed expert in one layer."""
        return self._mlp_params(self.expert_intermediate_size)

    @property
    def shared_expert_params_per_layer(self) -> int:
        if not self.num_shared_experts:
            return 0
        gate = self.hidden_size if self.shared_expert_gate else 0
        return self.num_shared_experts * self._mlp_params(self.shared_expert_intermediate_size) + gate

    @property
    def router_params_per_layer(self) -> int:
        return self.hidden_size * self.num_experts + (self.num_experts if self.mlp_bias else 0)

    def shared_params_of(self, kind: LayerKind) -> int:
        """Weights every token uses in one layer of this kind: attention and norms, plus the dense MLP (dense
        layers) or the shared experts and router (MoE layers)."""
        mlp = self.dense_mlp_params if kind.mlp == "dense" \
            else self.shared_expert_params_per_layer + self.router_params_per_layer
        return self.attention_params_per_layer + self.norm_params_per_layer + mlp

    def expert_params_of(self, kind: LayerKind) -> int:
        """Routed-expert weights of one layer of this kind: E · expert on MoE layers, 0 on dense ones."""
        return self.num_experts * self.expert_params if kind.mlp == "moe" else 0

    @property
    def embedding_params(self) -> int:
        """The token embedding, plus a learned absolute position table where the model has one (GPT-2)."""
        return (self.vocab_size + self.position_embeddings) * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def layer_shared_params(self) -> float:
        """Per-layer weights every token uses, averaged over layers (exact: Σ over layers / L)."""
        return sum(n * self.shared_params_of(k) for k, n in self.layer_kind_counts().items()) / self.num_layers

    @property
    def layer_expert_params(self) -> float:
        """Routed-expert weights per layer, averaged over layers: (MoE layers / layers) · E · expert."""
        return self.num_moe_layers * self.num_experts * self.expert_params / self.num_layers

    @property
    def moe_layer_fraction(self) -> float:
        return self.num_moe_layers / self.num_layers

    @property
    def non_layer_params(self) -> int:
        """Embedding (and position table), LM head (when untied) and the final norm."""
        lm = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.embedding_params + lm + self.hidden_size * (2 if self.norm_bias else 1)

    @property
    def total_params(self) -> float:
        return self.num_layers * (self.layer_shared_params + self.layer_expert_params) + self.non_layer_params

    @property
    def active_params(self) -> float:
        """Parameters one token touches: shared weights plus top-k routed experts (embedding included)."""
        active_experts = self.num_moe_layers * self.experts_per_token * self.expert_params
        return self.num_layers * self.layer_shared_params + active_experts + self.non_layer_params

    @property
    def matmul_flops_per_token(self) -> float:
        """2 · (active weights that multiply activations): every layer's active weights plus the LM head
        (the embedding is a lookup, not a matmul). Excludes the attention score/value products."""
        active_layers = self.active_params - self.non_layer_params
        return 2.0 * (active_layers + self.lm_head_params)

    # ---- KV cache --------------------------------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: K and V for each KV head (MHA/GQA/MQA), or MLA's compressed
        latent plus the decoupled RoPE key (kv_lora_rank + qk_rope_head_dim)."""
        if self.kv_lora_rank:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_bytes_per_element: float) -> float:
        """KV-cache bytes for one token across all layers, at a context inside every window (a sliding or
        chunked layer holds at most its window: see perf/memory.py kv_bytes_per_sequence)."""
        return self.num_layers * self.kv_elements_per_token_per_layer * kv_bytes_per_element

    @property
    def attention_flops_per_token_per_context(self) -> float:
        """FLOPs per layer per (query token × attended key): QK^T and PV, 2 FLOP per multiply-add.
        MLA is counted in its absorbed form (scores over the latent + rope dims, values over the latent)."""
        nh = self.num_heads
        if self.kv_lora_rank:
            return 2.0 * nh * (self.kv_lora_rank + self.qk_rope_head_dim) + 2.0 * nh * self.kv_lora_rank
        return 4.0 * nh * self.head_dim

    @property
    def prefill_attention_flops_per_token_per_context(self) -> float:
        """The same for prefill, where engines run MLA in its materialized multi-head form (K and V up-projected
        from the latent, scores over qk_nope + qk_rope dims, values over v_head_dim: DeepSeek-V3 81,920 against
        278,528 absorbed; vLLM vllm/v1/attention/backends/mla/common.py module docstring, "compute friendly
        approach for prefill ... data-movement friendly approach for decode", PR #13789). The up-projection
        GEMMs are counted with the layer's weights (kv_b). Other attention kinds: attention_flops_per_token_per_context."""
        if self.kv_lora_rank:
            nh = self.num_heads
            return 2.0 * nh * (self.qk_nope_head_dim + self.qk_rope_head_dim) + 2.0 * nh * self.v_head_dim
        return self.attention_flops_per_token_per_context

    def with_context(self, max_context: int) -> "ModelSpec":
        return replace(self, max_context=max_context)


# ---- building from config.json ---------------------------------------------------------------------------------
def _get(cfg: Mapping[str, Any], where: str, *keys: str, default: Any = None, required: bool = True) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    if required and default is None:
        raise InputError(f"{where}: missing field {keys[0]!r}")
    return default


# Plausible maxima for config.json sizes: roughly 8x beyond any published model (Llama-3.1-405B: 126 layers, 128
# heads; PaLM: 18,432 hidden; Gemma: 256k vocabulary; DeepSeek-V3: 256 experts), and small enough that the search's
# integer model (ns, KiB, products of them; planner/search/table.py, cpsat.py) stays inside int64. Above: a typo.
MAX_CONFIG_INT = 10**9
MAX_CONFIG_FIELD = {"num_hidden_layers": 1024, "hidden_size": 262_144, "num_attention_heads": 4096,
                    "num_key_value_heads": 4096, "head_dim": 2048, "vocab_size": 4_194_304,
                    "intermediate_size": 4_194_304, "intermediate_size_mlp": 4_194_304,
                    "moe_intermediate_size": 4_194_304, "num_local_experts": 16_384,
                    "num_experts_per_tok": 16_384, "max_position_embeddings": 100_000_000}
MAX_TOTAL_PARAMS = 1e14  # 50x the largest model discussed publicly (~2T)
MAX_KV_BYTES_PER_TOKEN = 1e8  # at 16-bit; GPT-3 175B (MHA, 96 layers) holds 4.7 MB per token


def _int(cfg: Mapping[str, Any], where: str, *keys: str, default: Any = None, minimum: int = 0) -> int:
    value = _get(cfg, where, *keys, default=default)
    key = next((k for k in keys if k in cfg and cfg[k] is not None), keys[0])
    if not is_number(value) or (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
        raise InputError(f"{where}: field {key!r} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise InputError(f"{where}: field {key!r} must be >= {minimum}, got {value}")
    limit = MAX_CONFIG_FIELD.get(keys[0], MAX_CONFIG_INT)
    if value > limit:
        raise InputError(f"{where}: field {key!r} is implausibly large ({value} > {limit})")
    return value


def _flag(cfg: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{where}: field {key!r} must be true or false, got {value!r}")
    return value


def _layer_list(cfg: Mapping[str, Any], where: str, key: str) -> set[int]:
    value = cfg.get(key) or []
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise InputError(f"{where}: field {key!r} must be a list of layer indices, got {value!r}")
    return set(value)


# Families by the `model_type` their configs declare. Gated (SwiGLU/GeGLU: gate, up, down) or plain (up, down) MLPs;
# for other types the activation name decides (GATED_ACTIVATIONS).
GATED_MODEL_TYPES = {"llama", "llama4_text", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma",
                     "gemma2", "gemma3", "gemma3_text", "phi3", "deepseek_v2", "deepseek_v3", "kimi_k2", "gpt_oss"}
PLAIN_MLP_MODEL_TYPES = {"gpt2", "gpt_bigcode", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi", "starcoder2"}
# Transformers' config classes that tie the LM head to the embedding when config.json does not say
# (PretrainedConfig's default is True; Llama/Mistral/Qwen2/Phi3/DeepSeek/gpt-oss/Llama-4 classes default to False).
TIED_BY_DEFAULT = {"gpt2", "gemma", "gemma2", "gemma3", "gemma3_text"}
# Gemma-2/3 normalize before and after both attention and MLP (4 norms per layer); Qwen3 and Gemma-3 normalize
# q and k per head with learned weights; Qwen2 has q/k/v biases without a config key.
FOUR_NORM_MODEL_TYPES = {"gemma2", "gemma3", "gemma3_text"}
QK_NORM_MODEL_TYPES = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text"}
QKV_BIAS_MODEL_TYPES = {"qwen2", "qwen2_moe"}
ATTENTION_LAYER_TYPES = {"full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "chunked"}


def _unsupported(cfg: Mapping[str, Any], top: Mapping[str, Any], model_type: str) -> str | None:
    """What the planner cannot model in this architecture (one phrase), or None."""
    if top.get("is_encoder_decoder") or cfg.get("is_encoder_decoder"):
        return "encoder-decoder models (the planner models decoder-only transformers)"
    if "mamba" in model_type or "hybrid_override_pattern" in cfg or "ssm_state_size" in cfg or "mamba_d_state" in cfg:
        return "state-space (Mamba) layers"
    if "index_topk" in cfg:
        return "DeepSeek sparse attention (index_topk)"
    if "global_head_dim" in cfg or "num_kv_shared_layers" in cfg or "altup_num_inputs" in cfg:
        return "layers with per-layer head sizes or KV shared across layers (Gemma-3n/4)"
    types = cfg.get("layer_types")
    if isinstance(types, list):
        other = sorted({str(t) for t in types if not isinstance(t, str) or t not in ATTENTION_LAYER_TYPES})
        if other:
            return (f"layer type {other[0]!r} (the planner models "
                    f"{', '.join(sorted(ATTENTION_LAYER_TYPES))} softmax attention)")
    return None


def _native_weights(qc: Any, where: str) -> tuple[str, str]:
    """(precision, scope) of a checkpoint's `quantization_config`: fp8 (DeepSeek/Kimi block FP8, ModelOpt FP8,
    compressed-tensors float8), mxfp4 (gpt-oss: routed experts only), int4/int8 (AWQ, GPTQ, compressed-tensors
    int), fp4 (ModelOpt NVFP4)."""
    if not isinstance(qc, Mapping):
        raise InputError(f"{where}: field 'quantization_config' must be an object, got {qc!r}")
    method = str(qc.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8", "all"
    if method == "mxfp4":
        skipped = qc.get("modules_to_not_convert") or []
        only_experts = isinstance(skipped, list) and any("self_attn" in str(m) for m in skipped)
        return "mxfp4", "experts" if only_experts else "all"
    if method in ("awq", "gptq"):
        bits = qc.get("bits", qc.get("w_bit"))
        if bits in (4, 8):
            return f"int{bits}", "all"
        raise InputError(f"{where}: cannot model {method.upper()} with {bits!r}-bit weights (4 or 8 are modelled)")
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        if algo in ("FP8", "NVFP4"):
            return ("fp8" if algo == "FP8" else "fp4"), "all"
        raise InputError(f"{where}: cannot model ModelOpt quant_algo {algo!r} (FP8 and NVFP4 are modelled)")
    if method == "compressed-tensors":
        groups = qc.get("config_groups") or {}
        w = next((g.get("weights") for g in groups.values() if isinstance(g, Mapping) and g.get("weights")), None) \
            if isinstance(groups, Mapping) else None
        if isinstance(w, Mapping):
            bits, kind = w.get("num_bits"), str(w.get("type", "int"))
            if bits == 8:
                return ("fp8" if kind == "float" else "int8"), "all"
            if bits == 4:
                return ("fp4" if kind == "float" else "int4"), "all"
        raise InputError(f"{where}: cannot model this compressed-tensors scheme (8-bit and 4-bit weights are modelled)")
    raise InputError(f"{where}: cannot model quantization method {method or '(none)'!r} "
                     f"(modelled: fp8, mxfp4, awq, gptq, modelopt, compressed-tensors)")


def _mlp_kinds(cfg: Mapping[str, Any], where: str, model_type: str, layers: int) -> list[str]:
    """Each layer's MLP, by the family's own rule (see the module docstring)."""
    if "first_k_dense_replace" in cfg:  # DeepSeek/Kimi: first k layers dense, then every moe_layer_freq-th is MoE
        k = _int(cfg, where, "first_k_dense_replace")
        freq = _int(cfg, where, "moe_layer_freq", default=1, minimum=1)
        return ["moe" if i >= k and i % freq == 0 else "dense" for i in range(layers)]
    if model_type == "llama4_text" or "interleave_moe_layer_step" in cfg or "moe_layers" in cfg:
        # Llama-4: MoE on the listed layers, by default every interleave_moe_layer_step-th (step-1, 2·step-1, ...)
        if cfg.get("moe_layers") is not None:
            moe = _layer_list(cfg, where, "moe_layers")
        else:
            step = _int(cfg, where, "interleave_moe_layer_step", default=1, minimum=1)
            moe = set(range(step - 1, layers, step))
        return ["moe" if i in moe else "dense" for i in range(layers)]
    # Qwen-MoE: decoder_sparse_step and mlp_only_layers; Mixtral and gpt-oss: every layer MoE
    step = _int(cfg, where, "decoder_sparse_step", default=1, minimum=1)
    only_mlp = _layer_list(cfg, where, "mlp_only_layers")
    return ["moe" if i not in only_mlp and (i + 1) % step == 0 else "dense" for i in range(layers)]


def _attention_kinds(cfg: Mapping[str, Any], where: str, model_type: str, layers: int) -> list[tuple[str, int]]:
    """Each layer's attention span: ("full", 0), ("sliding", window) or ("chunked", chunk)."""
    window = cfg.get("sliding_window")
    chunk = cfg.get("attention_chunk_size")

    def sized(kind: str) -> tuple[str, int]:
        if kind == "full":
            return ("full", 0)
        key = "sliding_window" if kind == "sliding" else "attention_chunk_size"
        return (kind, _int(cfg, where, key, minimum=1))

    types = cfg.get("layer_types")
    if types is not None:  # the explicit per-layer list (gpt-oss, recent Transformers configs)
        if not isinstance(types, list) or len(types) != layers:
            raise InputError(f"{where}: field 'layer_types' must list {layers} layer types, got {types!r}")
        return [sized(ATTENTION_LAYER_TYPES[t]) for t in types]
    if model_type == "llama4_text":  # RoPE layers attend within chunks, every 4th (NoPE) layer globally
        if not chunk:
            return [("full", 0)] * layers
        rope = cfg.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(layers)]
        if not isinstance(rope, list) or len(rope) != layers:
            raise InputError(f"{where}: field 'no_rope_layers' must list {layers} flags, got {rope!r}")
        return [sized("chunked") if r else ("full", 0) for r in rope]
    if not window or cfg.get("use_sliding_window") is False:
        return [("full", 0)] * layers
    if model_type == "gemma2":  # even layers local, odd layers global
        return [sized("sliding") if i % 2 == 0 else ("full", 0) for i in range(layers)]
    if model_type in ("gemma3", "gemma3_text"):  # every sliding_window_pattern-th layer global
        pattern = _int(cfg, where, "sliding_window_pattern", default=6, minimum=1)
        return [sized("sliding") if (i + 1) % pattern else ("full", 0) for i in range(layers)]
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):  # use_sliding_window: layers from max_window_layers
        first = _int(cfg, where, "max_window_layers", default=0)
        return [sized("sliding") if i >= first else ("full", 0) for i in range(layers)]
    return [sized("sliding")] * layers  # Mistral-7B, Phi-3: every layer


# RoPE scaling types whose max_position_embeddings already is the extended context (vLLM leaves them unscaled)
_ROPE_ALREADY_EXTENDED = ("su", "longrope", "llama3")


def rope_scaled_context(cfg: Mapping[str, Any], where: str, max_position_embeddings: int, model_type: str) -> int:
    """The longest sequence the model serves: max_position_embeddings, times `rope_scaling.factor` for the scaling
    types that stretch it (linear, dynamic, yarn; for yarn the base is original_max_position_embeddings), as vLLM's
    ModelConfig derives its default max_model_len (vllm/config `_get_and_verify_max_len`, v0.11). Llama-3.1's
    "llama3" type and LongRoPE already state the extended length; Gemma-3's max_position_embeddings is already
    scaled, so its factor is not applied again."""
    rope = cfg.get("rope_scaling")
    if not isinstance(rope, Mapping) or "gemma3" in model_type:
        return max_position_embeddings
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind in _ROPE_ALREADY_EXTENDED:
        return max_position_embeddings
    factor = rope.get("factor", 1.0)
    if not is_number(factor) or not 1.0 <= factor <= 1024:
        raise InputError(f"{where}: rope_scaling.factor must be a number from 1 to 1024, got {factor!r}")
    base = max_position_embeddings
    if kind == "yarn" and "original_max_position_embeddings" in rope:
        base = _int(rope, where, "original_max_position_embeddings", minimum=1)
    return int(base * factor)


def model_from_config(cfg: Mapping[str, Any], name: str, where: str | None = None) -> ModelSpec:
    """Build a `ModelSpec` from a parsed Hugging Face config dict. `where` names the file in error messages."""
    where = where or name
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object at the top level")
    top = cfg
    if "text_config" in cfg and "hidden_size" not in cfg:  # multimodal wrappers keep the LM under text_config
        cfg = cfg["text_config"]
        if not isinstance(cfg, Mapping):
            raise InputError(f"{where}: field 'text_config' must be an object, got {cfg!r}")
    model_type = str(cfg.get("model_type") or top.get("model_type") or "").lower()
    if model_type in ("gemma3", "llama4"):  # a wrapper's text model, when text_config does not name itself
        model_type += "_text"
    missing = _unsupported(cfg, top, model_type)
    if missing:
        raise InputError(f"{where}: cannot model {missing}")
    h = _int(cfg, where, "hidden_size", "n_embd", "d_model", minimum=1)
    layers = _int(cfg, where, "num_hidden_layers", "n_layer", "num_layers", minimum=1)
    heads = _int(cfg, where, "num_attention_heads", "n_head", minimum=1)
    kv_heads = _int(cfg, where, "num_key_value_heads", "multi_query_group_num", default=heads, minimum=1)
    head_dim = _int(cfg, where, "head_dim", default=max(h // heads, 1), minimum=1)
    vocab = _int(cfg, where, "vocab_size", minimum=1)
    ctx = _int(cfg, where, "max_position_embeddings", "n_positions", "seq_length", default=4096, minimum=1)
    act = _get(cfg, where, "hidden_act", "hidden_activation", "activation_function", default="silu")
    if not isinstance(act, str):
        raise InputError(f"{where}: field 'hidden_act' must be a string, got {act!r}")
    act = act.lower()
    gated_default = model_type in GATED_MODEL_TYPES or (model_type not in PLAIN_MLP_MODEL_TYPES
                                                         and act in GATED_ACTIVATIONS)
    gated = _flag(cfg, where, "planner_mlp_gated", gated_default)
    tie = _flag(cfg, where, "tie_word_embeddings", _flag(top, where, "tie_word_embeddings",
                                                          model_type in TIED_BY_DEFAULT))
    if kv_heads > heads or heads % kv_heads:
        raise InputError(f"{where}: num_key_value_heads ({kv_heads}) must divide num_attention_heads ({heads})")
    gpt2_style = model_type == "gpt2" or ("n_embd" in cfg and "hidden_size" not in cfg)

    kwargs: dict[str, Any] = {}
    n_experts = _int(cfg, where, "num_local_experts", "num_experts", "n_routed_experts", default=0)
    dense_ff = _int(cfg, where, "intermediate_size_mlp", "intermediate_size", "n_inner", "ffn_hidden_size",
                    default=4 * h if gpt2_style else 0)  # GPT-2: n_inner null means 4 · hidden
    mlp_kinds = ["dense"] * layers
    if n_experts:
        top_k = _int(cfg, where, "num_experts_per_tok", "experts_per_token", "top_k", "moe_topk", minimum=1)
        if top_k > n_experts:
            raise InputError(f"{where}: num_experts_per_tok ({top_k}) exceeds the number of experts ({n_experts})")
        expert_ff = _int(cfg, where, "moe_intermediate_size", "intermediate_size", minimum=1)
        shared_n = _int(cfg, where, "n_shared_experts", default=0)
        shared_ff = expert_ff if shared_n else 0
        if cfg.get("shared_expert_intermediate_size"):  # Qwen2-MoE: one gated shared expert of its own width
            shared_n, shared_ff = 1, _int(cfg, where, "shared_expert_intermediate_size", minimum=1)
            kwargs["shared_expert_gate"] = True
        if model_type == "llama4_text" or "intermediate_size_mlp" in cfg:
            # Llama-4: routed experts and one shared expert of intermediate_size; dense layers intermediate_size_mlp
            shared_n, shared_ff = 1, expert_ff
        mlp_kinds = _mlp_kinds(cfg, where, model_type, layers)
        if "dense" in mlp_kinds and not dense_ff:
            raise InputError(f"{where}: has dense layers but no 'intermediate_size' for them")
        kwargs.update(
            num_experts=n_experts, experts_per_token=top_k, expert_intermediate_size=expert_ff,
            num_shared_experts=shared_n, shared_expert_intermediate_size=shared_ff,
        )
        if "dense" not in mlp_kinds:
            dense_ff = 0
    elif not dense_ff:
        raise InputError(f"{where}: missing field 'intermediate_size'")
    if cfg.get("kv_lora_rank"):
        kwargs.update(
            kv_lora_rank=_int(cfg, where, "kv_lora_rank", minimum=1),
            q_lora_rank=_int(cfg, where, "q_lora_rank", default=0),
            qk_rope_head_dim=_int(cfg, where, "qk_rope_head_dim", minimum=1),
            qk_nope_head_dim=_int(cfg, where, "qk_nope_head_dim", minimum=1),
            v_head_dim=_int(cfg, where, "v_head_dim", minimum=1),
        )
        head_dim = kwargs["qk_nope_head_dim"] + kwargs["qk_rope_head_dim"]
        kv_heads = heads
    spans = _attention_kinds(cfg, where, model_type, layers)
    kinds = tuple(LayerKind(m, a, w) for m, (a, w) in zip(mlp_kinds, spans))
    qkv_bias = heads * head_dim + 2 * kv_heads * head_dim
    if gpt2_style or _flag(cfg, where, "attention_bias", False):
        attention_bias = qkv_bias + h  # q, k, v and output projections
    else:
        attention_bias = qkv_bias if model_type in QKV_BIAS_MODEL_TYPES else 0
    if "quantization_config" in top or "quantization_config" in cfg:
        native, scope = _native_weights(top.get("quantization_config", cfg.get("quantization_config")), where)
        kwargs.update(native_weights=native, native_quant_scope=scope)
    spec = ModelSpec(
        name=name, num_layers=layers, hidden_size=h, vocab_size=vocab, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim, max_context=rope_scaled_context(cfg, where, ctx, model_type), mlp_gated=gated, dense_intermediate_size=dense_ff,
        num_dense_layers=mlp_kinds.count("dense"), tie_word_embeddings=tie, layer_kinds=kinds,
        norms_per_layer=4 if model_type in FOUR_NORM_MODEL_TYPES else 2, norm_bias=gpt2_style,
        qk_norm=model_type in QK_NORM_MODEL_TYPES, attention_bias_params=attention_bias,
        attention_sinks=model_type == "gpt_oss", mlp_bias=gpt2_style or model_type == "gpt_oss"
        or _flag(cfg, where, "mlp_bias", False), position_embeddings=ctx if gpt2_style else 0,
        source=str(cfg.get("_planner_source", top.get("_planner_source", where))), **kwargs,
    )
    if spec.total_params > MAX_TOTAL_PARAMS:
        raise InputError(f"{where}: implausibly large model ({spec.total_params:.3g} parameters > "
                         f"{MAX_TOTAL_PARAMS:g}); check hidden_size, intermediate_size and the expert count")
    if spec.kv_bytes_per_token(2.0) > MAX_KV_BYTES_PER_TOKEN:
        raise InputError(f"{where}: implausibly large KV cache ({spec.kv_bytes_per_token(2.0):.3g} bytes per token "
                         f"at 16-bit); check num_key_value_heads, head_dim and num_hidden_layers")
    return spec


def model_from_path(path: Path) -> ModelSpec:
    """A local `config.json`, or a model folder containing one."""
    if path.is_dir():
        path = path / "config.json"
        if not path.exists():
            raise InputError(f"{path.parent}: model folder has no config.json")
    name = path.parent.name if path.name == "config.json" else path.stem
    # the name lands in launch scripts, manifests and reports (planner/text.py)
    check_text(str(path), "model path")
    return model_from_config(read_json(path), name=name, where=str(path))
