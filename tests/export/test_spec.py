"""catalog/engines/*.toml: every flag, variable, key and field carries its source; exporters cannot emit others."""
from __future__ import annotations

import pytest

from planner.export.spec import ENGINES, engine_spec

from .flags import engine_doc


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_file_names_version_docs_and_sources(engine):
    doc = engine_doc(engine)
    assert doc["engine"] == engine and doc["version"] and doc["docs"].startswith("https://")
    assert doc["sources"]
    for table in ("flag", "env", "yaml_key", "field"):
        for entry in doc.get(table, []):
            assert entry.get("source"), f"{engine} {table} {entry['name']} has no source"


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_engine_precision_tables_use_recorded_flags(engine):
    spec = engine_spec(engine)
    for flags in spec.weights.values():
        for f in flags:
            if f.startswith("--"):
                spec.flag(f)
    kv_flag = {"vllm": "--kv-cache-dtype", "sglang": "--kv-cache-dtype"}.get(engine)
    for value in spec.kv.values():
        if kv_flag:
            assert value in spec.flag(kv_flag).choices
    for near in spec.kv_nearest.values():
        assert near in spec.kv


def test_an_unrecorded_flag_or_choice_cannot_be_emitted():
    spec = engine_spec("vllm")
    assert spec.arg("--tensor-parallel-size", 4) == ["--tensor-parallel-size", "4"]
    assert spec.arg("-tp", 2) == ["-tp", "2"]
    assert spec.arg("--enable-expert-parallel") == ["--enable-expert-parallel"]
    with pytest.raises(KeyError):
        spec.arg("--tensor-parallel", 4)
    with pytest.raises(KeyError):
        spec.arg("--kv-cache-dtype", "int8")
    with pytest.raises(KeyError):
        spec.env_var("VLLM_SOMETHING")


def test_unknown_engine_is_an_input_error():
    from planner.errors import InputError

    with pytest.raises(InputError, match="unknown engine"):
        engine_spec("tgi")
