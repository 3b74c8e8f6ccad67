"""An engine's recorded CLI surface (catalog/engines/<engine>.toml): the flags, environment variables and config keys
the exporters may emit, each with the source it was checked in. Exporters build every argument through
`EngineSpec.arg`, so a flag that is not recorded cannot be emitted."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from ..catalog import CATALOG, read_toml
from ..errors import InputError

ENGINES = ("vllm", "sglang", "trtllm", "k8s")


@dataclass(frozen=True)
class Flag:
    name: str
    type: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class EngineSpec:
    engine: str
    version: str
    docs: str
    sources: tuple[str, ...]
    command: tuple[str, ...]
    image: str
    vendors: tuple[str, ...]
    flags: Mapping[str, Flag]
    env: Mapping[str, str]
    yaml_keys: Mapping[str, str]
    doc: Mapping[str, Any] = field(default_factory=dict)  # the whole TOML, for the tables below

    @property
    def layout(self) -> Mapping[str, Any]:
        return self.doc.get("layout", {})

    @property
    def weights(self) -> Mapping[str, list[str]]:
        return self.doc.get("weights", {})

    @property
    def kv(self) -> Mapping[str, str]:
        return self.doc.get("kv", {})

    @property
    def kv_nearest(self) -> Mapping[str, str]:
        return self.doc.get("kv_nearest", {})

    def image_for(self, vendor: str) -> str:
        """The container image for an accelerator vendor: the vendor's build ([images]), else the default one."""
        return self.doc.get("images", {}).get(vendor, self.image)

    def flag(self, name: str) -> Flag:
        for f in self.flags.values():
            if name == f.name or name in f.aliases:
                return f
        raise KeyError(f"{self.engine} {self.version}: flag {name} is not in catalog/engines/{self.engine}.toml")

    def arg(self, name: str, value: Any = True) -> list[str]:
        """`[name]` for a boolean flag, `[name, str(value)]` otherwise; the flag and any choice must be recorded."""
        f = self.flag(name)
        if f.type == "bool":
            return [name] if value else []
        text = format_value(value)
        if f.choices and text not in f.choices:
            raise KeyError(f"{self.engine} {self.version}: {name} {text!r} is not one of {list(f.choices)}")
        return [name, text]

    def env_var(self, name: str) -> str:
        if name not in self.env:
            raise KeyError(f"{self.engine}: environment variable {name} is not in catalog/engines/{self.engine}.toml")
        return name


def dotted_keys(d: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every key of a nested config, dotted (`speculative_config.num_speculative_tokens`), as the engine records
    list the keys they know."""
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += dotted_keys(v, prefix + k + ".")
    return keys


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value  # as given: a ShellRef (planner/export/base.py) stays one
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@lru_cache(maxsize=None)
def engine_spec(engine: str) -> EngineSpec:
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    where = f"catalog/engines/{engine}.toml"
    doc = read_toml(CATALOG / "engines" / f"{engine}.toml", where)
    flags = {}
    for f in doc.get("flag", []):
        flags[f["name"]] = Flag(f["name"], f.get("type", "str"), tuple(f.get("aliases", ())),
                                tuple(f.get("choices", ())), f.get("source", ""))
    return EngineSpec(
        engine=doc["engine"], version=str(doc["version"]), docs=doc.get("docs", ""),
        sources=tuple(doc.get("sources", ())), command=tuple(doc.get("command", ())), image=doc.get("image", ""),
        vendors=tuple(doc.get("vendors", ())), flags=flags,
        env={e["name"]: e.get("source", "") for e in doc.get("env", [])},
        yaml_keys={k["name"]: k.get("source", "") for k in doc.get("yaml_key", [])}, doc=doc,
    )


def support_matrix() -> Mapping[str, Any]:
    """catalog/engines/support.toml (read by planner/engines.py, which the search shares)."""
    from ..engines import support_matrix as matrix

    return matrix()
