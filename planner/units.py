"""Unit constants. Code works in SI (bytes, seconds, FLOP, USD); these convert at the edges only."""
GB = 1e9
GiB = float(2**30)
MiB = float(2**20)
TB = 1e12
TFLOP = 1e12
Gbit = 1e9 / 8  # bytes in one gigabit
SECONDS_PER_HOUR = 3600.0
HOURS_PER_MONTH = 730.0  # 8760 h / 12, the usual cloud-billing month

# Bytes per stored element for each precision name users type.
# int4 carries a per-group scale: one bf16 scale per 128 weights (AWQ/GPTQ default group size 128),
# so 0.5 + 2/128 bytes per weight.
BYTES_PER_ELEMENT = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + 2.0 / 128,
    "fp4": 0.5 + 1.0 / 16,  # NVFP4: one fp8 scale per 16 values
    "mxfp4": 0.5 + 1.0 / 32,  # OCP MXFP4 (gpt-oss): one 8-bit power-of-two scale per 32 values
}

WEIGHT_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4")
KV_PRECISIONS = ("bf16", "fp16", "fp8", "int8")

# The tensor-core dtype a weight precision computes in: fp8/int8 as W8A8, int4 as weight-only (W4A16),
# fp4 as W4A4 (NVFP4 on Blackwell), mxfp4 as weight-only (W4A16: dequantized to bf16 in the matmul, as the
# MXFP4 MoE kernels that serve gpt-oss on Hopper do; the OCP MX v1.0 spec defines the format).
COMPUTE_DTYPE = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8", "int4": "bf16", "fp4": "fp4",
                 "mxfp4": "bf16"}
