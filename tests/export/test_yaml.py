"""The YAML the exporters write (PyYAML's safe_dump) reads back as the same data, whatever the strings hold."""
from __future__ import annotations

import pytest

from planner.export.yaml import dump, dump_all

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

CASES = [
    {"a": 1, "b": 2.5, "c": True, "d": None, "e": "text", "f": [], "g": {}},
    {"kv_cache_config": {"free_gpu_memory_fraction": 0.9, "dtype": "fp8", "max_tokens": 12}},
    {"list": [{"name": "x", "value": "1,2,3"}, {"name": "y", "args": ["--a", "0.9", "$(LWS_GROUP_SIZE)"]}]},
    {"yes": "no", "on": "off", "null": "~", "0.9": "1e3", "leaderworkerset.sigs.k8s.io/name": "m",
     "colon": "a: b # c", "quote": 'say "hi"', "newline": "a\nb", "unicode": "µs"},
    {"nested": [[1, 2], ["a", {"b": [None, False]}]]},
]


@pytest.mark.parametrize("data", CASES)
def test_round_trip(data):
    assert yaml.safe_load(dump(data)) == data


def test_strings_never_become_numbers_or_booleans():
    data = {"v": ["0.9", "8", "true", "null", "1e3", "0x10", "010"]}
    assert yaml.safe_load(dump(data)) == data


def test_documents():
    docs = [{"kind": "A"}, {"kind": "B", "spec": {"replicas": 2}}]
    assert list(yaml.safe_load_all(dump_all(docs))) == docs


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(st.text(), st.one_of(st.text(), st.lists(st.text()))))
def test_any_printable_or_control_text_round_trips(data):
    text = dump(data)
    assert yaml.safe_load(text) == data
    assert list(yaml.safe_load_all(dump_all([data, {"kind": "B"}]))) == [data, {"kind": "B"}]
