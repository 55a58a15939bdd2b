"""``lastgood.units.parse_since``: the start of a period, as ``report --since`` and the API's
``since`` read it, in process and table-driven."""

from __future__ import annotations

from datetime import datetime

import pytest

from lastgood.errors import UsageError
from lastgood.units import parse_since

NOW = 1_700_000_000.0  # 2023-11-14, well after 1970 and well before the far future below


@pytest.mark.parametrize(
    ("text", "ago"),
    [("7d", 7 * 86400.0), ("12h", 12 * 3600.0), (" 30m ", 1800.0), ("250ms", 0.25), ("90", 90.0)],
)
def test_a_duration_is_that_long_before_now(text: str, ago: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(NOW - ago)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-01", datetime(2023, 11, 1).timestamp()),  # local time, as people mean it
        ("2023-11-01T09:30", datetime(2023, 11, 1, 9, 30).timestamp()),
        ("2023-11-01T09:30+00:00", 1698831000.0),  # an offset says which clock
    ],
)
def test_a_date_is_that_moment(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("last tuesday", "--since 'last tuesday' is neither a duration nor a date"),
        ("2999-01-01", "--since '2999-01-01' is in the future"),
        ("1969-01-01T00:00+00:00", "--since '1969-01-01T00:00+00:00' is before 1970"),
        ("0001-01-01", "--since '0001-01-01' is before 1970"),
        ("100000d", "--since '100000d' reaches back before 1970"),
    ],
)
def test_anything_else_is_a_usage_error_that_quotes_it(text: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_since(text, NOW)
    assert refused.value.message == message
    assert refused.value.hint
