"""The analytic performance model: one module per concern, numpy-vectorized over candidates.

- roofline.py   time of one kernel group = max(FLOPs / peak·eff, bytes / HBM·eff)
- kernels.py    efficiency by shape: GEMMs rising with tokens, wave quantization, attention occupancy, MoE tiles
- params.py     the named parameters and their profiles per accelerator family / engine / GPU
- moe.py        routing statistics: distinct experts touched per step, tokens per expert
- comm.py       TP ring all-reduce, EP all-to-all, PP send/recv
- window.py     attention spans of full, sliding-window and chunked layers: keys attended, tokens held
- memory.py     per-GPU memory: weights, KV cache (windows capped), activations, reserve; max batch
- step.py       one layer / one pipeline stage forward step (prefill or decode), composed from the above
- pipeline.py   micro-batched pipeline: decode cycle time, prefill latency
- batching.py   continuous-batching steady state for a workload
- specdec.py    speculative decoding: expected tokens per verification step
- estimate.py   `estimate()`: one configuration in, metrics out
- calibrate.py  fitting the profiles to measurements with provenance (catalog/calibration/)
- measure.py    `planner calibrate --measure`: timing a GPU with PyTorch and fitting its profile
"""
