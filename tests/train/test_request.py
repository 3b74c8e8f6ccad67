"""planner/train/request.py: counts typed with suffixes, the defaults (sequence length, ~4M-token batches of
whole sequences), the objective, request files (keys = flag names, paths relative to the file) and errors."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.train.request import make_request, named, parse_count, read_request, request_doc


@pytest.mark.parametrize("text, value", [
    ("13T", 13e12), ("13e12", 13e12), ("1.5b", 1.5e9), ("4M", 4e6), ("2k", 2000.0), ("1_000", 1000.0),
    ("15,600,000", 15.6e6), (7, 7.0),
])
def test_parse_count_reads_suffixes_and_separators(text, value):
    assert parse_count(text, "--tokens", 1e16) == value


@pytest.mark.parametrize("text", ["13X", "", True, -1, 0, float("inf"), "2e17"])
def test_parse_count_refuses_what_is_not_a_positive_count_in_range(text):
    with pytest.raises(InputError, match="--tokens must be a number"):
        parse_count(text, "--tokens", 1e16)


def test_defaults_seq_len_8192_and_4m_tokens_of_whole_sequences():
    req, _ = make_request("llama-3.1-8b", tokens="1T", gpus="h100-sxm", num_gpus=64)
    assert req.seq_len == 8192  # min(context 131072, 8192)
    assert req.global_batch_tokens == 512 * 8192 == 4 * 2**20  # 4 Mi tokens = 512 sequences of 8192
    assert req.global_batch_seqs == 512 and req.objective == "cost"
    req, _ = make_request("llama-3.1-8b", tokens="1T", seq_len=3000, gpus="h100-sxm", num_gpus=64)
    assert req.global_batch_tokens == (4 * 2**20 // 3000) * 3000 == 1398 * 3000  # whole sequences below 4 Mi
    req, _ = make_request("llama-3.1-8b", tokens="1T", gpus="h100-sxm", budget_usd=1e6)
    assert req.objective == "time"  # a budget alone: the fastest run within it


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_len": 4096, "global_batch_tokens": 5000}, r"must be a multiple of --seq-len \(4096\).*e\.g\. 4096"),
    ({"tokens": "1M", "global_batch_tokens": 2**21}, r"exceeds --tokens"),
    ({"max_gpus": 8}, r"not both"),
    ({"num_gpus": None}, r"give --num-gpus, --deadline-days or --budget-usd"),
    ({"price": 1000}, r"--price must be a number > 0 and <= 100"),
    ({"price_tier": "markett"}, r"unknown price tier 'markett' \(did you mean 'market'"),
])
def test_contradictions_and_bad_values_are_one_line(kwargs, message):
    args = {"tokens": "1T", "gpus": "h100-sxm", "num_gpus": 64, **kwargs}
    with pytest.raises(InputError, match=message):
        make_request("llama-3.1-8b", **args)


def test_a_request_file_resolves_paths_against_itself_and_names_itself_in_errors(tmp_path):
    f = tmp_path / "sub" / "run.toml"
    f.parent.mkdir()
    f.write_text('model = "cfg/config.json"\ncatalog = "cat.toml"\ntokens = "1T"\ndescription = "x"\n')
    doc = read_request(f)
    assert doc == {"model": str(f.parent / "cfg/config.json"), "catalog": str(f.parent / "cat.toml"), "tokens": "1T"}
    with pytest.raises(InputError, match=r"r\.toml: unknown key 'tokenz' \(did you mean 'tokens'"):
        request_doc({"tokenz": 1}, "r.toml")
    with pytest.raises(InputError, match=r"^r\.toml: seq_len must be an integer"):
        named("r.toml", make_request, "llama-3.1-8b", tokens="1T", gpus="h100-sxm", num_gpus=8, seq_len=1.5)
