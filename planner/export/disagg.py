"""Launch configurations for a disaggregated plan (planner/disagg.py: a prefill pool and a decode pool).

Each pool is exported as the single-layout plan it is (`pool_plan`, then the engine's own exporter: the same flags,
layout checks, support refusals and re-estimates as any plan), with the engine's disaggregation settings added, and
a router in front of both:

- SGLang: `--disaggregation-mode prefill|decode` (the prefill server told the decode layout, the decode server the
  prefill PP), and `python3 -m sglang_router.launch_router --pd-disaggregation --prefill URL… --decode URL…`;
- vLLM: `--kv-transfer-config` with the NIXL connector on both roles; requests need a P/D proxy, which vLLM 0.11.0
  does not ship (a note names its reference one);
- TensorRT-LLM: `cache_transceiver_config` in each server's YAML (context servers also
  `disable_overlap_scheduler`), and `trtllm-serve disaggregated -c disagg-config.yaml`.

Every flag, YAML key and router command is recorded with its source in catalog/engines/<engine>.toml
([[flag]], [[yaml_key]], [disaggregation]); an engine without the `disaggregation` feature in
catalog/engines/support.toml, and k8s manifests, are refused in one line. The script is one file for every
machine: `ROLE=prefill|decode|router sh launch.sh`."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from ..errors import InputError
from .base import SERVE_PORT, Export, _comment, _heredoc_end
from .spec import dotted_keys, engine_spec, support_matrix

ROLES = ("prefill", "decode")
# the names the router reaches replica i of each pool by (hosts files, DNS or k8s Services make them resolve)
HOST_NAME = "{role}-{i}"


def is_disaggregated(plan: Any) -> bool:
    return isinstance(plan, dict) and isinstance(plan.get("pools"), dict)


def pool_plan(plan: dict[str, Any], role: str) -> dict[str, Any]:
    """The plan of one pool as a single-layout plan (the layout fields of `plan["pools"][role]`, the rest shared)."""
    pools = plan["pools"]
    if not isinstance(pools, dict) or set(pools) != set(ROLES) or not all(isinstance(p, dict) for p in pools.values()):
        raise InputError("plan: 'pools' must hold a 'prefill' and a 'decode' object (planner plan --json output)")
    p = pools[role]
    missing = [k for k in ("gpu", "weights", "kv", "tp", "dp", "pp", "ep", "replicas", "batch", "micro_batch",
                           "layers_per_stage", "gpus_per_replica", "gpus", "usd_per_hour", "memory_per_gpu_bytes")
               if k not in p]
    if missing:
        raise InputError(f"plan: pools.{role} is missing {', '.join(missing)}")
    d = {k: v for k, v in plan.items() if k not in ("pools", "kv_transfer_s", "disaggregation")}
    d.update(gpu=p["gpu"], gpus_per_replica=p["gpus_per_replica"], total_gpus=p["gpus"], batch=p["batch"],
             micro_batch=p["micro_batch"], memory_per_gpu_bytes=p["memory_per_gpu_bytes"],
             parallelism={"tp": p["tp"], "dp": p["dp"], "pp": p["pp"], "ep": p["ep"], "replicas": p["replicas"]},
             precision={"weights": p["weights"], "kv": p["kv"]}, placement={"layers_per_stage": p["layers_per_stage"]})
    cost = dict(plan.get("cost") or {})
    by_type = cost.get("usd_per_hour_per_gpu_by_type") or {}
    cost.update(usd_per_hour=p["usd_per_hour"])
    if p["gpu"] in by_type:
        cost["usd_per_hour_per_gpu"] = by_type[p["gpu"]]
    d["cost"] = cost
    if p["gpu"] != plan.get("gpu"):
        d.pop("gpu_name", None)
    return d


@dataclass
class DisaggExport:
    """The launch configuration of a disaggregated plan: one `Export` per pool (each replica of a pool runs it),
    the router that fronts them, the files all of them read, and notes."""

    engine: str
    version: str
    docs: str
    pools: dict[str, Export]
    replicas: dict[str, int]
    router_argv: list[str]
    files: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return self.router_argv

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "version": self.version, "docs": self.docs, "mode": "disaggregated",
                "pools": {r: {**ex.to_dict(), "replicas": self.replicas[r]} for r, ex in self.pools.items()},
                "router": {"argv": self.router_argv,
                           "command": shlex.join(self.router_argv) if self.router_argv else None},
                "files": self.files, "notes": self.notes}

    def script(self) -> str:
        """One POSIX script for every machine: the config files, then the commands of the machine's ROLE."""
        out = ["#!/bin/sh", "set -eu", _comment(f"disaggregated plan: {self.replicas['prefill']} prefill and "
                                                f"{self.replicas['decode']} decode replica(s), {self.engine} "
                                                f"{self.version}; run with ROLE=prefill, ROLE=decode (on each "
                                                "replica's node 0) or ROLE=router")]
        out += [_comment(f"NOTE: {n}") for n in self.notes]
        for name, text in self.files.items():
            end = _heredoc_end(text)
            out += [f"cat > {shlex.quote(name)} <<'{end}'", text.rstrip("\n"), end]
        out.append('case "${ROLE:?set ROLE to prefill, decode or router}" in')
        for role, ex in self.pools.items():
            body = replace(ex, files={}).script().splitlines()[2:]  # its own #!/bin/sh and set -eu are above
            out += [f"{role})"] + ["  " + line for line in body] + ["  ;;"]
        out.append("router)")
        if self.router_argv:
            out.append("  " + " ".join(shlex.quote(a) for a in self.router_argv))
        else:
            out += ['  echo "no router ships with this engine version: see the notes at the top" >&2', "  exit 2"]
        out += ["  ;;", "*)", '  echo "ROLE must be prefill, decode or router" >&2', "  exit 2", "  ;;", "esac"]
        return "\n".join(out) + "\n"


def export_disaggregated(plan: dict[str, Any], engine: str, export_one, **kwargs) -> DisaggExport:
    """Both pools of `plan` for `engine` (`export_one`: `planner.export.export` for one single-layout plan)."""
    if engine == "k8s":
        raise InputError("k8s: a disaggregated plan (prefill and decode pools behind a router) has no manifest "
                         "export yet; export it with --engine sglang, vllm or trtllm")
    spec = engine_spec(engine)
    feats = (support_matrix().get("features", {}).get(engine) or {}).get("supported", [])
    if "disaggregation" not in feats:
        able = [e for e, f in sorted(support_matrix().get("features", {}).items())
                if "disaggregation" in f.get("supported", [])]
        raise InputError(f"{engine} {spec.version} does not serve prefill and decode pools apart (no "
                         f"'disaggregation' in catalog/engines/support.toml [features.{engine}]); "
                         f"{'export with --engine ' + ' or '.join(able) if able else 'plan with --disagg off'}")
    subs = {role: pool_plan(plan, role) for role in ROLES}
    parts: dict[str, Export] = {}
    for role in ROLES:
        try:
            parts[role] = export_one(subs[role], engine, **kwargs)
        except InputError as e:
            raise InputError(f"{role} pool: {e}") from None
    for role, ex in parts.items():
        if ex.reestimate is not None:
            _role_reestimate(plan, role, ex, kwargs.get("model"), kwargs.get("catalog"), kwargs.get("price_tier"))
    replicas = {role: int(subs[role]["parallelism"]["replicas"]) for role in ROLES}
    doc = spec.doc["disaggregation"]
    hosts = {role: [HOST_NAME.format(role=role, i=i) for i in range(replicas[role])] for role in ROLES}
    notes = [f"the router reaches prefill replica i at prefill-i:{SERVE_PORT} and decode replica j at "
             f"decode-j:{SERVE_PORT}: make these names resolve (hosts file, DNS or Services) or replace them",
             f"each pool's own notes are in its section below; disaggregation per {doc['source']}"]
    files: dict[str, str] = {}
    router: list[str] = []
    if engine == "sglang":
        dec, pre = subs["decode"]["parallelism"], subs["prefill"]["parallelism"]
        extra = {"prefill": spec.arg("--disaggregation-mode", "prefill")
                 + spec.arg("--disaggregation-decode-tp", dec["tp"] * dec["dp"])
                 + spec.arg("--disaggregation-decode-dp", dec["dp"]),
                 "decode": spec.arg("--disaggregation-mode", "decode")
                 + spec.arg("--disaggregation-prefill-pp", pre["pp"])}
        for role, ex in parts.items():
            ex.argv = ex.argv + extra[role]
            for node in ex.other_nodes:
                node["argv"] = node["argv"] + extra[role]
        router = list(doc["router"])
        for role in ROLES:
            for h in hosts[role]:
                router += [f"--{role}", f"http://{h}:{SERVE_PORT}"]
        router += ["--host", "0.0.0.0", "--port", str(SERVE_PORT)]
        notes.append(f"the router is the {doc['router_package']} package (pip install {doc['router_package']})")
    elif engine == "vllm":
        for ex in parts.values():
            ex.argv = ex.argv + spec.arg("--kv-transfer-config", doc["kv_transfer_config"])
        notes.append("vLLM 0.11.0 ships no P/D proxy: route requests with one that sends each prompt to a prefill "
                     f"server, then to a decode server, such as vLLM's {doc['proxy']}; set "
                     "VLLM_NIXL_SIDE_CHANNEL_HOST to each server's address when the pools are on different machines")
    else:  # trtllm
        from .engines import TRTLLM_OPTIONS_FILE

        max_len = int(plan["workload"].get("max_model_len") or plan["workload"]["isl"])
        for role, ex in parts.items():
            options = yaml.safe_load(ex.files.pop(TRTLLM_OPTIONS_FILE))
            options["cache_transceiver_config"] = {"backend": doc["transceiver_backend"],
                                                   # at least the longest prompt (the source's advice)
                                                   "max_tokens_in_buffer": max_len}
            if role == "prefill":  # not supported on context servers yet (the source)
                options["disable_overlap_scheduler"] = True
            for key in dotted_keys(options):
                if key not in spec.yaml_keys:
                    raise KeyError(f"trtllm: YAML key {key} is not in catalog/engines/trtllm.toml")
            name = f"{role}-{TRTLLM_OPTIONS_FILE}"
            ex.files[name] = yaml.safe_dump(options, sort_keys=False)
            ex.argv = [name if a == TRTLLM_OPTIONS_FILE else a for a in ex.argv]
        config = {"hostname": "0.0.0.0", "port": SERVE_PORT, "backend": "pytorch",
                  "context_servers": {"num_instances": replicas["prefill"],
                                      "urls": [f"{h}:{SERVE_PORT}" for h in hosts["prefill"]]},
                  "generation_servers": {"num_instances": replicas["decode"],
                                         "urls": [f"{h}:{SERVE_PORT}" for h in hosts["decode"]]}}
        for key in dotted_keys(config):
            if key not in doc["config_keys"]:
                raise KeyError(f"trtllm: disaggregated-server key {key} is not in catalog/engines/trtllm.toml")
        files["disagg-config.yaml"] = yaml.safe_dump(config, sort_keys=False)
        router = list(doc["server"]) + ["disagg-config.yaml"]
    for ex in parts.values():
        files.update(ex.files)
    return DisaggExport(spec.engine, spec.version, spec.docs, parts, replicas, router, files, notes)


def _role_reestimate(plan: dict[str, Any], role: str, ex: Export, model: Any, catalog: Any,
                     price_tier: str | None) -> None:
    """Replace the exporter's re-estimate of a changed layout (a colocated replica's TTFT, TPOT and cost) by what
    the pool's role needs: a prefill replica's prefill latency + the KV transfer against the TTFT limit, a decode
    replica's decode cycle against the TPOT limit (`perf.estimate` of the emitted layout)."""
    from ..catalog import load_catalog, load_model
    from ..perf.estimate import Config, estimate
    from ..specs.workload import Workload

    lay = ex.layout["emitted"]
    cat = load_catalog(catalog, price_tier=price_tier)
    m = model if model is not None and not isinstance(model, str) else load_model(model or plan["model"])
    w = plan["workload"]
    cfg = Config(gpu=cat.gpu(plan["pools"][role]["gpu"]), tp=lay["tp"], pp=lay["pp"], ep=lay["ep"],
                 batch=lay["batch"], weights=lay["weights"], kv=lay["kv"],
                 layers_per_stage=tuple(lay["layers_per_stage"]), dp=lay["dp"])
    e = estimate(m, cfg, Workload(w["isl"], w["osl"]), cat.perf)
    slo = plan.get("slo") or {}
    if role == "prefill":
        value, limit, what = e.ttft_s + float(plan.get("kv_transfer_s") or 0.0), slo.get("ttft_s"), "TTFT"
        planned = plan["pools"]["prefill"]["latency_s"] + float(plan.get("kv_transfer_s") or 0.0)
    else:
        value, limit, what = e.decode_cycle_s, slo.get("tpot_s"), "TPOT (decode cycle)"
        planned = plan["pools"]["decode"]["latency_s"]
    ex.notes = [n for n in ex.notes if not n.startswith("the emitted layout misses an SLO")]
    ex.notes.append(f"re-estimate of the emitted {role} layout (planner.perf.estimate): {what} "
                    f"{value * 1000:.1f} ms vs {planned * 1000:.1f} ms planned"
                    + ("" if limit is None else f", limit {limit * 1000:.1f} ms"
                       + (" (MISSED)" if value > limit * (1 + 1e-9) else ""))
                    + f"; fits: {'yes' if e.fits else 'NO'}")
    ex.reestimate = None


__all__ = ["DisaggExport", "export_disaggregated", "is_disaggregated", "pool_plan"]
