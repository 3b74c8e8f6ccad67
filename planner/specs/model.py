"""`ModelSpec`: the architecture facts the performance model needs, built from a Hugging Face `config.json`.

Supported families (by the keys their configs use):
- dense decoder (Llama, Mistral, Qwen2/3, GPT-2/3 style): MHA, GQA or MQA attention;
- Mixtral-style MoE (`num_local_experts`), Qwen-MoE (`num_experts`, `moe_intermediate_size`, shared expert,
  `decoder_sparse_step`, `mlp_only_layers`), DeepSeek-V2/V3 (`n_routed_experts`, `n_shared_experts`,
  `first_k_dense_replace`) with multi-head latent attention (MLA, `kv_lora_rank`).

Parameter-counting convention (what `total_params` / `active_params` mean): every weight matrix of the
attention projections, MLPs, experts, shared experts and routers, RMS/Layer norms, the input embedding and the
LM head (counted once when tied). Biases are not counted. DeepSeek-V3's multi-token-prediction module
(`num_nextn_predict_layers`) is not part of the served main model and is not counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..files import read_json

GATED_ACTIVATIONS = {"silu", "swish", "swiglu", "geglu", "gelu_pytorch_tanh_gated"}
ATTENTION_KINDS = ("mha", "gqa", "mqa", "mla")


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
    # MLA (DeepSeek); kv_lora_rank == 0 for standard attention
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    source: str = field(default="", compare=False)

    # ---- structure -------------------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers

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

    # ---- parameter counts (elements) -------------------------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        """Attention projection weights of one layer (plus MLA's latent norms)."""
        h, nh = self.hidden_size, self.num_heads
        if self.kv_lora_rank:
            qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * nh * qk_dim
            else:
                q = h * nh * qk_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * nh * (self.qk_nope_head_dim + self.v_head_dim)
            o = nh * self.v_head_dim * h
            return q + kv_a + kv_b + o
        hd = self.head_dim
        return h * nh * hd + 2 * h * self.num_kv_heads * hd + nh * hd * h

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def dense_mlp_params(self) -> int:
        """One dense layer's MLP."""
        return self._mlp_matrices * self.hidden_size * self.dense_intermediate_size

    @property
    def expert_params(self) -> int:
        """One routed expert in one layer."""
        return self._mlp_matrices * self.hidden_size * self.expert_intermediate_size

    @property
    def shared_expert_params_per_layer(self) -> int:
        return self.num_shared_experts * self._mlp_matrices * self.hidden_size * self.shared_expert_intermediate_size

    @property
    def router_params_per_layer(self) -> int:
        return self.hidden_size * self.num_experts

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def layer_shared_params(self) -> float:
        """Per-layer weights every token uses, averaged over layers: attention, norms, dense MLP (dense layers),
        shared experts and routers (MoE layers)."""
        moe_part = self.num_moe_layers * (self.shared_expert_params_per_layer + self.router_params_per_layer)
        dense_part = self.num_dense_layers * self.dense_mlp_params
        return self.attention_params_per_layer + self.norm_params_per_layer + (moe_part + dense_part) / self.num_layers

    @property
    def layer_expert_params(self) -> float:
        """Routed-expert weights per layer, averaged over layers: (MoE layers / layers) · E · expert."""
        return self.num_moe_layers * self.num_experts * self.expert_params / self.num_layers

    @property
    def moe_layer_fraction(self) -> float:
        return self.num_moe_layers / self.num_layers

    @property
    def non_layer_params(self) -> int:
        """Embedding, LM head (when untied) and the final norm."""
        lm = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.embedding_params + lm + self.hidden_size

    @property
    def total_params(self) -> float:
        return self.num_layers * (self.layer_shared_params + self.layer_expert_params) + self.non_layer_params

    @property
    def active_params(self) -> float:
        """Parameters one token touches: shared weights plus top-k routed experts."""
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
        """KV-cache bytes for one token across all layers."""
        return self.num_layers * self.kv_elements_per_token_per_layer * kv_bytes_per_element

    @property
    def attention_flops_per_token_per_context(self) -> float:
        """FLOPs per layer per (query token × attended key): QK^T and PV, 2 FLOP per multiply-add.
        MLA is counted in its absorbed form (scores over the latent + rope dims, values over the latent)."""
        nh = self.num_heads
        if self.kv_lora_rank:
            return 2.0 * nh * (self.kv_lora_rank + self.qk_rope_head_dim) + 2.0 * nh * self.kv_lora_rank
        return 4.0 * nh * self.head_dim

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
                    "intermediate_size": 4_194_304, "moe_intermediate_size": 4_194_304, "num_local_experts": 16_384,
                    "num_experts_per_tok": 16_384, "max_position_embeddings": 100_000_000}
MAX_TOTAL_PARAMS = 1e14  # 50x the largest model discussed publicly (~2T)
MAX_KV_BYTES_PER_TOKEN = 1e8  # at 16-bit; GPT-3 175B (MHA, 96 layers) holds 4.7 MB per token


def _int(cfg: Mapping[str, Any], where: str, *keys: str, default: Any = None, minimum: int = 0) -> int:
    value = _get(cfg, where, *keys, default=default)
    key = next((k for k in keys if k in cfg and cfg[k] is not None), keys[0])
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and (not math.isfinite(value) or value != int(value)))):
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


def model_from_config(cfg: Mapping[str, Any], name: str, where: str | None = None) -> ModelSpec:
    """Build a `ModelSpec` from a parsed Hugging Face config dict. `where` names the file in error messages."""
    where = where or name
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object at the top level")
    if "text_config" in cfg and "hidden_size" not in cfg:  # multimodal wrappers keep the LM under text_config
        cfg = cfg["text_config"]
        if not isinstance(cfg, Mapping):
            raise InputError(f"{where}: field 'text_config' must be an object, got {cfg!r}")
    h = _int(cfg, where, "hidden_size", "n_embd", "d_model", minimum=1)
    layers = _int(cfg, where, "num_hidden_layers", "n_layer", "num_layers", minimum=1)
    heads = _int(cfg, where, "num_attention_heads", "n_head", minimum=1)
    kv_heads = _int(cfg, where, "num_key_value_heads", "multi_query_group_num", default=heads, minimum=1)
    head_dim = _int(cfg, where, "head_dim", default=max(h // heads, 1), minimum=1)
    vocab = _int(cfg, where, "vocab_size", minimum=1)
    ctx = _int(cfg, where, "max_position_embeddings", "n_positions", "seq_length", default=4096, minimum=1)
    act = _get(cfg, where, "hidden_act", "activation_function", default="silu")
    if not isinstance(act, str):
        raise InputError(f"{where}: field 'hidden_act' must be a string, got {act!r}")
    act = act.lower()
    gated = _flag(cfg, where, "planner_mlp_gated", act in GATED_ACTIVATIONS)
    tie = _flag(cfg, where, "tie_word_embeddings", False)
    if kv_heads > heads or heads % kv_heads:
        raise InputError(f"{where}: num_key_value_heads ({kv_heads}) must divide num_attention_heads ({heads})")

    kwargs: dict[str, Any] = {}
    n_experts = _int(cfg, where, "num_local_experts", "num_experts", "n_routed_experts", default=0)
    dense_ff = _int(cfg, where, "intermediate_size", "n_inner", "ffn_hidden_size", default=0)
    if n_experts:
        top_k = _int(cfg, where, "num_experts_per_tok", "top_k", "moe_topk", minimum=1)
        if top_k > n_experts:
            raise InputError(f"{where}: num_experts_per_tok ({top_k}) exceeds the number of experts ({n_experts})")
        expert_ff = _int(cfg, where, "moe_intermediate_size", "intermediate_size", minimum=1)
        shared_n = _int(cfg, where, "n_shared_experts", default=0)
        shared_ff = expert_ff if shared_n else 0
        if cfg.get("shared_expert_intermediate_size"):  # Qwen2-MoE: one shared expert of its own width
            shared_n, shared_ff = 1, _int(cfg, where, "shared_expert_intermediate_size", minimum=1)
        if "first_k_dense_replace" in cfg:  # DeepSeek: first k layers dense, then every moe_layer_freq-th is MoE
            k = _int(cfg, where, "first_k_dense_replace")
            freq = _int(cfg, where, "moe_layer_freq", default=1, minimum=1)
            moe_layers = sum(1 for i in range(layers) if i >= k and i % freq == 0)
        else:  # Qwen-MoE: decoder_sparse_step and mlp_only_layers; Mixtral: all layers MoE
            step = _int(cfg, where, "decoder_sparse_step", default=1, minimum=1)
            only_mlp = _layer_list(cfg, where, "mlp_only_layers")
            moe_layers = sum(1 for i in range(layers) if i not in only_mlp and (i + 1) % step == 0)
        if moe_layers < layers and not dense_ff:
            raise InputError(f"{where}: has dense layers but no 'intermediate_size' for them")
        kwargs.update(
            num_experts=n_experts, experts_per_token=top_k, expert_intermediate_size=expert_ff,
            num_shared_experts=shared_n, shared_expert_intermediate_size=shared_ff,
        )
        dense_layers = layers - moe_layers
        if "moe_intermediate_size" not in cfg and "first_k_dense_replace" not in cfg:
            dense_ff = dense_ff if dense_layers else 0
    else:
        if not dense_ff:
            raise InputError(f"{where}: missing field 'intermediate_size'")
        dense_layers = layers
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
    spec = ModelSpec(
        name=name, num_layers=layers, hidden_size=h, vocab_size=vocab, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim, max_context=ctx, mlp_gated=gated, dense_intermediate_size=dense_ff,
        num_dense_layers=dense_layers, tie_word_embeddings=tie,
        source=str(cfg.get("_planner_source", where)), **kwargs,
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
    return model_from_config(read_json(path), name=name, where=str(path))
