"""The version-reference grammar, table-driven."""

from __future__ import annotations

import pytest

from lastgood.errors import UsageError
from lastgood.refs import Ref, parse

CASES = [
    ("12", Ref("number", "12", None, "12")),
    ("v12", Ref("number", "12", None, "v12")),
    ("V3", Ref("number", "3", None, "V3")),
    ("3f2a9c", Ref("hash", "3f2a9c", None, "3f2a9c")),
    ("3F2A9C1D", Ref("hash", "3f2a9c1d", None, "3F2A9C1D")),
    ("123456", Ref("hash", "123456", None, "123456")),
    ("live", Ref("live", "live", None, "live")),
    ("last-good", Ref("last-good", "last-good", None, "last-good")),
    ("previous", Ref("previous", "previous", None, "previous")),
    ("staging:last-good", Ref("last-good", "last-good", "staging", "staging:last-good")),
    ("production:v7", Ref("number", "7", "production", "production:v7")),
    ("prod-eu:live", Ref("live", "live", "prod-eu", "prod-eu:live")),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse(text: str, expected: Ref) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "v", "vx", "abc", "12a", "last_good", "a b:live", ":live", "v\u0663", "\u0663"]
)  # U+0663: an Arabic-Indic three, which int() and \d read as 3
def test_bad_references_explain_the_grammar(text: str) -> None:
    with pytest.raises(UsageError, match="not a version reference") as raised:
        parse(text)
    assert "last-good" in str(raised.value)
