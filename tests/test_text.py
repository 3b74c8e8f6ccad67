"""planner/text.py: which characters are refused at the edge, and how `one_line` escapes them."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.text import check_text, is_unsafe_char, one_line, unsafe_chars


@pytest.mark.parametrize("c, unsafe", [
    ("\n", True), ("\t", True), ("\x1b", True),  # Cc: line break, tab, terminal escape
    ("\u202e", True), ("\u200b", True),  # Cf: right-to-left override, zero-width space
    ("\u2028", True), ("\u2029", True),  # Zl, Zp: YAML line breaks
    ("\ue000", True),  # Co: private use
    ("a", False), (" ", False), ("é", False), ("µ", False), ("\\", False), ("→", False),
])
def test_unsafe_characters_are_controls_formats_and_line_separators(c, unsafe):
    assert is_unsafe_char(c) is unsafe


def test_one_line_escapes_each_unsafe_character_and_keeps_the_rest():
    assert one_line("plain text → ok") == "plain text → ok"
    assert one_line("evil\ntouch PWNED") == "evil\\u000atouch PWNED"
    assert one_line("a\u202eb\\c") == "a\\u202eb\\c"  # a backslash stays itself
    assert one_line("x\U000f0000") == "x\\U000f0000"  # beyond the BMP: eight hex digits
    assert unsafe_chars("a\tb\nc") == ["\t", "\n"]


def test_check_text_passes_safe_values_through_and_names_the_first_bad_character():
    assert check_text("llama-3.1-70b", "--model") == "llama-3.1-70b"
    assert check_text(42, "--isl") == 42  # not text: another check's business
    with pytest.raises(InputError, match=r"^r\.toml: description contains a control character \(U\+0009\) in "
                                         r"'a\\u0009b\\u000a'"):
        check_text("a\tb\n", "r.toml: description")
