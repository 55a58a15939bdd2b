"""Freezes and change windows (``lastgood.freezes``): what is closed when, across DST changes,
and every configuration mistake. Every moment is passed explicitly: nothing here reads a clock,
except the CLI tests, which place their freezes around the real now."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lastgood import config
from lastgood.errors import ConfigError
from lastgood.freezes import (
    FREEZE_KEYS,
    WINDOW_KEYS,
    ChangeCalendar,
    Closure,
    FreezeSpec,
    parse_calendar,
)
from tests.conftest import Workspace

BERLIN = ZoneInfo("Europe/Berlin")
WHERE = "/srv/ops/lastgood.toml"
HOUR = 3600.0
DAY = 86400.0

YEAR_END = {
    "name": "year-end",
    "from": "2026-12-20 00:00",
    "until": "2027-01-04 09:00",
    "timezone": "Europe/Berlin",
    "reason": "year-end close",
}
WEEKEND = {
    "name": "weekend",
    "cron": "0 16 * * FRI",
    "duration": "65h",
    "timezone": "Europe/Berlin",
}
OFFICE = {"days": "mon-fri", "from": "09:00", "until": "16:00", "timezone": "Europe/Berlin"}


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a wall-clock time in Berlin (the first one, in the repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def calendar(
    freezes: list[dict[str, Any]] | None = None, windows: list[dict[str, Any]] | None = None
) -> ChangeCalendar:
    table: dict[str, Any] = {}
    if freezes is not None:
        table["freeze"] = freezes
    if windows is not None:
        table["window"] = windows
    return parse_calendar(table, "env.production.", WHERE)


def refused(**table: Any) -> ConfigError:
    """The ConfigError ``table`` (the keys of [env.production]) is refused with."""
    with pytest.raises(ConfigError) as caught:
        parse_calendar(table, "env.production.", WHERE)
    assert WHERE in caught.value.message
    assert caught.value.hint
    return caught.value


# ---- fixed freezes ---------------------------------------------------------------------------


def test_a_fixed_freeze_holds_from_its_start_up_to_its_end() -> None:
    found = calendar([YEAR_END])
    starts, ends = berlin(2026, 12, 20), berlin(2027, 1, 4, 9)
    assert found.closed_at(starts - 1) is None
    expected = Closure("year-end", "year-end close", "freeze", starts, ends)
    assert found.closed_at(starts) == expected
    assert found.closed_at(ends - 0.5) == expected
    assert found.closed_at(ends) is None
    assert found.describe(expected) == (
        "freeze 'year-end' (year-end close) until 2027-01-04 09:00 Europe/Berlin"
    )
    assert found.opens_at(berlin(2026, 12, 25, 12)) == ends
    assert found.opens_at(ends + 5) == ends + 5


def test_fixed_times_take_offsets_toml_dates_and_default_to_utc() -> None:
    parsed = tomllib.loads(
        textwrap.dedent(
            """
            [[freeze]]
            from = "2026-06-01T10:00:00+02:00"   # the offset wins over the timezone
            until = 2026-06-02T00:00:00           # TOML's own local date-time
            timezone = "America/New_York"
            [[freeze]]
            name = "launch"
            from = 2026-07-01                     # a TOML date: midnight
            until = "2026-07-02"
            """
        )
    )
    found = parse_calendar(parsed, "env.production.", WHERE)
    first, launch = found.freezes
    assert first.name == "freeze-1" and first.starts == utc(2026, 6, 1, 8)
    assert first.ends == datetime(2026, 6, 2, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert (launch.timezone, launch.starts, launch.ends) == (
        "UTC",
        utc(2026, 7, 1),
        utc(2026, 7, 2),
    )
    assert launch.reason == ""
    closure = found.closed_at(utc(2026, 7, 1, 12))
    assert closure is not None
    assert found.describe(closure) == "freeze 'launch' until 2026-07-02 00:00 UTC"


# ---- recurring freezes and DST ---------------------------------------------------------------


def test_a_weekend_freeze_in_an_ordinary_week() -> None:
    found = calendar([WEEKEND])
    friday, monday = berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 9)
    assert found.closed_at(friday - 1) is None
    assert found.closed_at(friday) == Closure("weekend", "", "freeze", friday, monday)
    assert found.closed_at(berlin(2026, 3, 8, 12)) == Closure(
        "weekend", "", "freeze", friday, monday
    )
    assert found.closed_at(monday) is None
    assert monday - friday == 65 * HOUR
    assert found.opens_at(berlin(2026, 3, 7)) == monday


def test_a_weekend_over_the_spring_change_ends_monday_0900_after_64_hours() -> None:
    # the last Sunday of March 2026 is the 29th: 02:00 CET becomes 03:00 CEST
    found = calendar([WEEKEND])
    closure = found.closed_at(berlin(2026, 3, 29, 12))
    assert closure is not None
    assert closure.starts == utc(2026, 3, 27, 15)  # Friday 16:00 CET
    assert closure.ends == utc(2026, 3, 30, 7)  # Monday 09:00 CEST: the duration is local
    assert closure.ends - closure.starts == 64 * HOUR
    assert found.describe(closure) == "freeze 'weekend' until 2026-03-30 09:00 Europe/Berlin"
    assert found.closed_at(utc(2026, 3, 30, 7)) is None
    assert found.closed_at(utc(2026, 3, 30, 6, 59)) == closure


def test_a_weekend_over_the_autumn_change_ends_monday_0900_after_66_hours() -> None:
    # the last Sunday of October 2026 is the 25th: 03:00 CEST becomes 02:00 CET
    found = calendar([WEEKEND])
    closure = found.closed_at(berlin(2026, 10, 25, 12))
    assert closure is not None
    assert closure.starts == utc(2026, 10, 23, 14)  # Friday 16:00 CEST
    assert closure.ends == utc(2026, 10, 26, 8)  # Monday 09:00 CET
    assert closure.ends - closure.starts == 66 * HOUR
    # the next Friday starts at 16:00 CET: the start follows the local clock too
    following = found.next_closure(closure.ends, 7 * DAY)
    assert following is not None and following.starts == utc(2026, 10, 30, 15)


def test_a_start_in_the_spring_gap_moves_to_0300_and_the_repeated_hour_runs_once() -> None:
    found = calendar([{"name": "night", "cron": "30 2 * * SUN", "duration": "30m",
                       "timezone": "Europe/Berlin"}])  # fmt: skip
    spring = found.closed_at(berlin(2026, 3, 29, 3, 10))
    assert spring is not None
    assert (spring.starts, spring.ends) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30))
    # 02:30 CEST, then the clock runs 02:00-03:00 again in CET; 02:30 + 30 min on the local
    # clock is 03:00 CET, so the freeze covers the second 02:30-03:00 too, as one closure
    autumn = found.closed_at(utc(2026, 10, 25, 0, 45))
    assert autumn is not None
    assert (autumn.starts, autumn.ends) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2))
    assert found.closed_at(utc(2026, 10, 25, 1, 45)) == autumn
    assert found.next_closure(utc(2026, 10, 25, 0, 45), 6 * DAY) is None


def test_occurrences_of_one_freeze_that_overlap_are_one_closure() -> None:
    found = calendar([{**WEEKEND, "cron": "0 16 * * FRI,SAT"}])
    tuesday = berlin(2026, 3, 10, 9)  # Saturday 16:00 + 65 h
    for at in (berlin(2026, 3, 6, 20), berlin(2026, 3, 7, 20), berlin(2026, 3, 9, 12)):
        closure = found.closed_at(at)
        assert closure is not None and closure.ends == tuesday
    assert found.opens_at(berlin(2026, 3, 6, 17)) == tuesday


def test_the_freeze_ending_last_wins_when_several_are_in_force() -> None:
    inside = {"name": "audit", "from": "2026-03-07 10:00", "until": "2026-03-07 12:00",
              "timezone": "Europe/Berlin"}  # fmt: skip
    longer = {**inside, "name": "migration", "until": "2026-03-10 12:00"}
    found = calendar([inside, WEEKEND])
    closure = found.closed_at(berlin(2026, 3, 7, 11))
    assert closure is not None and closure.name == "weekend"
    found = calendar([WEEKEND, longer])
    closure = found.closed_at(berlin(2026, 3, 7, 11))
    assert closure is not None and closure.name == "migration"
    assert closure.ends == berlin(2026, 3, 10, 12)


def test_next_closure_is_the_first_to_start_within_the_notice() -> None:
    found = calendar([WEEKEND, YEAR_END])
    friday = berlin(2026, 3, 6, 10)
    upcoming = found.next_closure(friday, DAY)
    assert upcoming == Closure(
        "weekend", "", "freeze", berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 9)
    )
    assert found.describe_start(upcoming) == (
        "freeze 'weekend' starts Fri 16:00 Europe/Berlin (until 2026-03-09 09:00)"
    )
    assert found.next_closure(friday, 6 * HOUR) is None  # starts in exactly 6 h: not before
    assert found.next_closure(berlin(2026, 3, 5, 10), DAY) is None  # 30 h ahead
    before_year_end = found.next_closure(berlin(2026, 12, 19, 12), DAY)
    assert before_year_end is not None and before_year_end.name == "year-end"
    assert found.describe_start(before_year_end) == (
        "freeze 'year-end' (year-end close) starts Sun 00:00 Europe/Berlin (until 2027-01-04 09:00)"
    )
    assert found.next_closure(berlin(2027, 2, 1), DAY) is None  # the fixed one is over


# ---- windows ---------------------------------------------------------------------------------


def test_outside_weekday_windows_it_is_closed_from_one_window_to_the_next() -> None:
    found = calendar(windows=[OFFICE])
    assert found.closed_at(berlin(2026, 3, 4, 9)) is None  # Wednesday
    assert found.closed_at(berlin(2026, 3, 4, 15, 59)) is None
    evening = found.closed_at(berlin(2026, 3, 4, 16))
    assert evening == Closure("window-1", "outside the allowed change windows", "outside-window",
                              berlin(2026, 3, 4, 16), berlin(2026, 3, 5, 9))  # fmt: skip
    assert found.describe(evening) == (
        "outside the allowed change windows until 2026-03-05 09:00 Europe/Berlin, "
        "when window 'window-1' opens"
    )
    weekend = found.closed_at(berlin(2026, 3, 7, 12))
    assert weekend is not None
    assert (weekend.starts, weekend.ends) == (berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 9))
    assert found.closed_at(berlin(2026, 3, 9, 8, 59)) == weekend
    assert found.opens_at(berlin(2026, 3, 7, 12)) == berlin(2026, 3, 9, 9)
    assert found.opens_at(berlin(2026, 3, 9, 10)) == berlin(2026, 3, 9, 10)


def test_windows_follow_the_local_clock_over_the_spring_change() -> None:
    found = calendar(windows=[OFFICE])
    closure = found.closed_at(berlin(2026, 3, 28, 12))
    assert closure is not None
    assert (closure.starts, closure.ends) == (utc(2026, 3, 27, 15), utc(2026, 3, 30, 7))


def test_next_closure_walks_through_windows_that_meet_or_overlap() -> None:
    morning = {"name": "morning", "days": "mon-fri", "from": "09:00", "until": "12:00"}
    afternoon = {"name": "afternoon", "days": "daily", "from": "11:00", "until": "17:00"}
    found = calendar(windows=[morning, afternoon])
    upcoming = found.next_closure(utc(2026, 3, 2, 10), DAY)  # a Monday
    assert upcoming is not None and upcoming.kind == "outside-window"
    assert (upcoming.starts, upcoming.ends) == (utc(2026, 3, 2, 17), utc(2026, 3, 3, 9))
    assert upcoming.name == "morning"  # the window that ends it
    assert found.describe_start(upcoming) == (
        "outside the allowed change windows from Mon 17:00 UTC (until 2026-03-03 09:00)"
    )
    # outside now: the next closure is the one after the next window
    later = found.next_closure(utc(2026, 3, 2, 20), 2 * DAY)
    assert later is not None and later.starts == utc(2026, 3, 3, 17)
    # on Saturday only the afternoon window opens
    saturday = found.closed_at(utc(2026, 3, 7, 10))
    assert saturday is not None and saturday.ends == utc(2026, 3, 7, 11)
    assert saturday.name == "afternoon"


@pytest.mark.parametrize(
    ("days", "numbers"),
    [
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("mon,wed,fri", (0, 2, 4)),
        (["sat", "sun"], (5, 6)),
        ("daily", (0, 1, 2, 3, 4, 5, 6)),
        ("fri-mon", (0, 4, 5, 6)),
        (" Monday , TUE ", (0, 1)),
        (["mon-tue", "thu"], (0, 1, 3)),
    ],
)
def test_window_days(days: Any, numbers: tuple[int, ...]) -> None:
    (window,) = calendar(windows=[{"days": days, "from": "09:00", "until": "10:00"}]).windows
    assert window.days == numbers


def test_a_window_may_end_at_midnight_and_days_default_to_daily() -> None:
    found = calendar(windows=[{"from": "20:00", "until": "24:00"}])
    (window,) = found.windows
    assert (window.days, window.opens, window.closes) == (tuple(range(7)), 20 * 60, 24 * 60)
    assert found.closed_at(utc(2026, 3, 7, 23, 59)) is None
    closure = found.closed_at(utc(2026, 3, 8))
    assert closure is not None and closure.ends == utc(2026, 3, 8, 20)


# ---- opens_at --------------------------------------------------------------------------------


def test_opens_at_walks_through_a_chain_of_closures() -> None:
    release_train = {"name": "release-train", "from": "2027-01-04 10:00",
                     "until": "2027-01-04 12:00", "timezone": "Europe/Berlin"}  # fmt: skip
    found = calendar([YEAR_END, WEEKEND, release_train],
                     [{**OFFICE, "from": "10:00"}])  # fmt: skip
    # the year-end freeze ends Monday 09:00; the window opens at 10:00; the release train
    # holds until 12:00
    assert found.opens_at(berlin(2026, 12, 25, 12)) == berlin(2027, 1, 4, 12)
    # Friday 15:00 in a window: open now; at 16:00 the weekend and the window's end coincide
    assert found.opens_at(berlin(2027, 1, 8, 15)) == berlin(2027, 1, 8, 15)
    assert found.opens_at(berlin(2027, 1, 8, 16)) == berlin(2027, 1, 11, 10)


def test_opens_at_is_infinite_when_nothing_opens_within_a_year() -> None:
    forever = {"from": "2026-01-01 00:00", "until": "2028-01-01 00:00"}
    assert calendar([forever]).opens_at(utc(2026, 6, 1)) == math.inf
    always = {"cron": "0 * * * *", "duration": "2h"}  # every hour, two hours long
    started = time.monotonic()
    assert calendar([always]).opens_at(utc(2026, 6, 1)) == math.inf
    assert time.monotonic() - started < 10  # bounded, not endless


def test_an_empty_calendar_is_never_closed() -> None:
    empty = ChangeCalendar()
    assert empty.closed_at(0.0) is None and empty.next_closure(0.0, 1e9) is None
    assert empty.opens_at(123.0) == 123.0
    assert calendar() == empty


# ---- configuration errors --------------------------------------------------------------------


def test_freeze_must_be_an_array_of_tables() -> None:
    error = refused(freeze={"name": "x"})
    assert "env.production.freeze" in error.message and "array of tables" in error.message
    assert "[[env.production.freeze]]" in str(error.hint)
    error = refused(freeze=["year-end"])
    assert "env.production.freeze #1" in error.message and "must be a table" in error.message


def test_an_unknown_key_is_named_with_the_closest_known_one() -> None:
    error = refused(freeze=[YEAR_END, {**WEEKEND, "durration": "65h"}])
    assert "env.production.freeze #2" in error.message and "'durration'" in error.message
    assert "did you mean duration?" in str(error.hint)
    error = refused(window=[{**OFFICE, "day": "mon"}])
    assert "env.production.window #1" in error.message and "did you mean days?" in str(error.hint)
    assert 'days = "mon-fri"' in str(error.hint)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"name": "x"}, ["needs either from and until", "has neither"]),
        ({**YEAR_END, "cron": "0 16 * * FRI"}, ["needs either from and until", "has both"]),
        ({"from": "2026-12-20 00:00"}, ["has no until"]),
        ({"until": "2026-12-20 00:00"}, ["has no from"]),
        ({"cron": "0 16 * * FRI"}, ["has no duration"]),
        ({"duration": "65h"}, ["has no cron"]),
    ],
)
def test_a_freeze_is_fixed_or_recurring(entry: dict[str, Any], words: list[str]) -> None:
    error = refused(freeze=[entry])
    assert "env.production.freeze #1" in error.message
    for word in words:
        assert word in error.message
    assert 'from = "2026-12-20 00:00"' in str(error.hint) or "cron = " in str(error.hint)


@pytest.mark.parametrize(
    ("entry", "key", "hint"),
    [
        ({**YEAR_END, "from": "next friday"}, "freeze #1.from = 'next friday'", "2026-12-20 00:00"),
        ({**YEAR_END, "until": 20270104}, "freeze #1.until = 20270104", "+01:00"),
        ({**YEAR_END, "until": "2026-12-19 00:00"}, "freeze #1.until", "ends after it starts"),
        ({**YEAR_END, "timezone": "Europe/Berln"}, "freeze #1.timezone", "'Europe/Berlin'"),
        ({**YEAR_END, "timezone": "CEST+2"}, "freeze #1.timezone", '"Europe/Berlin"'),
        ({**YEAR_END, "timezone": 1}, "freeze #1.timezone = 1", '"UTC"'),
        ({**YEAR_END, "name": ""}, "freeze #1.name", 'name = "year-end"'),
        ({**YEAR_END, "reason": 5}, "freeze #1.reason = 5", 'reason = "year-end close"'),
        ({**WEEKEND, "cron": "0 16 * *"}, "freeze #1.cron = '0 16 * *'", "five fields"),
        ({**WEEKEND, "cron": "0 0 16 * * FRI"}, "freeze #1.cron", 'cron = "0 16 * * FRI"'),
        ({**WEEKEND, "cron": "0 25 * * FRI"}, "freeze #1.cron", "five fields"),
        ({**WEEKEND, "cron": 16}, "freeze #1.cron = 16", "five fields"),
        ({**WEEKEND, "duration": "65 hours"}, "freeze #1.duration", 'duration = "65h"'),
        ({**WEEKEND, "duration": "0s"}, "freeze #1.duration = '0s'", 'duration = "65h"'),
        ({**WEEKEND, "duration": -1}, "freeze #1.duration", 'duration = "65h"'),
    ],
)
def test_every_wrong_freeze_value_is_named_with_a_correct_example(
    entry: dict[str, Any], key: str, hint: str
) -> None:
    error = refused(freeze=[entry])
    assert f"env.production.{key}" in error.message
    assert hint in str(error.hint)


@pytest.mark.parametrize(
    ("entry", "key", "hint"),
    [
        ({**OFFICE, "from": "9am"}, "window #1.from = '9am'", 'from = "09:00"'),
        ({**OFFICE, "until": "25:00"}, "window #1.until = '25:00'", 'until = "16:00"'),
        ({**OFFICE, "from": "24:00"}, "window #1.from = '24:00'", 'from = "09:00"'),
        ({**OFFICE, "from": "09:60"}, "window #1.from", 'from = "09:00"'),
        ({**OFFICE, "until": 16}, "window #1.until = 16", 'until = "16:00"'),
        ({**OFFICE, "days": "weekdays"}, "window #1.days = 'weekdays'", '"mon-fri"'),
        ({**OFFICE, "days": []}, "window #1.days = []", '"mon,wed,fri"'),
        ({**OFFICE, "days": [1, 2]}, "window #1.days", '["sat", "sun"]'),
        ({**OFFICE, "days": "mon-xyz"}, "window #1.days", '"daily"'),
        ({**OFFICE, "timezone": "Berlin"}, "window #1.timezone = 'Berlin'", '"Europe/Berlin"'),
        ({"days": "mon", "until": "16:00"}, "window #1 ", 'from = "09:00"'),
    ],
)
def test_every_wrong_window_value_is_named_with_a_correct_example(
    entry: dict[str, Any], key: str, hint: str
) -> None:
    error = refused(window=[entry])
    assert f"env.production.{key}" in error.message
    assert hint in str(error.hint)


def test_a_window_cannot_run_past_midnight() -> None:
    error = refused(window=[{**OFFICE, "from": "22:00", "until": "06:00"}])
    assert "env.production.window #1" in error.message
    assert "cannot run past midnight" in error.message
    assert 'until = "24:00"' in str(error.hint) and 'from = "00:00"' in str(error.hint)
    assert "past midnight" in refused(window=[{**OFFICE, "until": "09:00"}]).message


def test_names_are_unique_per_environment() -> None:
    error = refused(freeze=[YEAR_END, {**WEEKEND, "name": "year-end"}])
    assert "env.production.freeze #2" in error.message and "'year-end'" in error.message
    assert 'name = "year-end-2"' in str(error.hint)
    # derived names are unique too, and a window may share a freeze's name
    found = calendar([{"from": "2026-01-01", "until": "2026-01-02"}] * 2,
                     [{**OFFICE, "name": "freeze-1"}])  # fmt: skip
    assert [f.name for f in found.freezes] == ["freeze-1", "freeze-2"]


# ---- through lastgood.toml -------------------------------------------------------------------

TOML = """
[env.production]
target = { type = "directory", path = "../live" }
"""


def test_config_reads_the_calendar_into_the_environment(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text(
        TOML + '\n[[env.production.freeze]]\nname = "weekend"\ncron = "0 16 * * FRI"\n'
        'duration = "65h"\ntimezone = "Europe/Berlin"\n'
        '\n[[env.production.window]]\ndays = "mon-fri"\nfrom = "09:00"\nuntil = "16:00"\n'
    )
    production = config.load(tmp_path).environment("production")
    assert production.calendar.freezes == (
        FreezeSpec(name="weekend", timezone="Europe/Berlin", cron="0 16 * * FRI",
                   duration=65 * HOUR),
    )  # fmt: skip
    assert production.calendar.windows[0].days == (0, 1, 2, 3, 4)
    (tmp_path / "lastgood.toml").write_text(TOML)
    assert config.load(tmp_path).environment("production").calendar == ChangeCalendar()


def test_a_config_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text(
        TOML + '\n[[env.production.freeze]]\nfrom = "soon"\nuntil = "later"\n'
    )
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)
    assert f"env.production.freeze #1.from = 'soon' in {tmp_path / 'lastgood.toml'}" in str(
        caught.value
    )


WINDOW_TOML = '[[env.production.window]]\nfrom = "09:00"\nuntil = "17:00"\n'
FREEZE_TOML = '[[env.production.freeze]]\ncron = "0 16 * * FRI"\nduration = "65h"\n'


@pytest.mark.parametrize(
    ("extra", "imported"),
    [
        ("", []),
        (WINDOW_TOML, []),  # UTC needs no time zone database
        (WINDOW_TOML + 'timezone = "Europe/Berlin"\n', ["zoneinfo"]),
        (FREEZE_TOML, ["cronsim"]),
    ],
)
def test_zoneinfo_and_cronsim_load_only_for_a_configured_calendar(
    tmp_path: Path, extra: str, imported: list[str]
) -> None:
    """``lastgood.config`` is on the rollback fast lane: no time zone database without a need."""
    (tmp_path / "lastgood.toml").write_text(TOML + extra)
    code = (
        "import sys; from pathlib import Path; from lastgood import config; "
        f"config.load(Path({str(tmp_path)!r})); "
        "print(sorted(m for m in ('zoneinfo', 'cronsim') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.replace("'", '"')) == imported


def test_every_freeze_and_window_key_is_documented() -> None:
    text = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    freeze, window = text.split("### `[[env.NAME.freeze]]`")[1].split("### `[[env.NAME.window]]`")
    window = window.split("\n## ")[0]
    for key in FREEZE_KEYS:
        assert f"| `{key}` |" in freeze, key
    for key in WINDOW_KEYS:
        assert f"| `{key}` |" in window, key
    assert "never held by a freeze" in text


# ---- status ----------------------------------------------------------------------------------

Factory = Callable[..., Workspace]


def add_to_config(ws: Workspace, text: str) -> None:
    path = ws.root / "lastgood.toml"
    path.write_text(path.read_text() + textwrap.dedent(text))


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def test_status_shows_an_active_freeze(workspace: Factory) -> None:
    ws = workspace()
    ws.healthy("one")
    ws.run("deploy", "staging")
    now = time.time()
    add_to_config(
        ws,
        f"""
        [[env.staging.freeze]]
        name = "incident-review"
        from = "{iso(now - HOUR)}"
        until = "{iso(now + 3 * DAY)}"
        reason = "postmortem of the zero scores"
        """,
    )
    text = ws.run("status", "staging")
    assert text.returncode == 0, text.stderr
    until = datetime.fromtimestamp(now + 3 * DAY, UTC).strftime("%Y-%m-%d %H:%M")
    line = f"  frozen        freeze 'incident-review' (postmortem of the zero scores) until {until}"
    assert f"{line} UTC\n" in text.stdout
    assert "live          v1" in text.stdout  # and the rest of status is unchanged
    (report,) = json.loads(ws.run("status", "staging", "--json").stdout)
    freeze = report["freeze"]
    assert freeze["state"] == "active" and freeze["kind"] == "freeze"
    assert freeze["name"] == "incident-review" and freeze["reason"].startswith("postmortem")
    assert freeze["ends"] == freeze["opens_at"] == float(int(now + 3 * DAY))
    assert freeze["text"].startswith("freeze 'incident-review'")


def test_status_announces_a_freeze_starting_within_a_day(workspace: Factory) -> None:
    ws = workspace()
    soon = datetime.fromtimestamp(time.time() + 2 * HOUR, UTC)
    add_to_config(
        ws,
        f"""
        [[env.staging.freeze]]
        name = "nightly-batch"
        cron = "{soon.minute} {soon.hour} * * *"
        duration = "1h"
        """,
    )
    (report,) = json.loads(ws.run("status", "--json").stdout)
    assert report["freeze"]["state"] == "upcoming" and report["freeze"]["name"] == "nightly-batch"
    text = ws.run("status").stdout
    assert f"  upcoming      freeze 'nightly-batch' starts {soon:%a %H:%M} UTC" in text


def test_status_verb_judges_the_calendar_at_the_moment_given(workspace: Factory) -> None:
    from lastgood.operations.status import status

    ws = workspace()
    add_to_config(
        ws,
        """
        [[env.staging.window]]
        days = "mon-fri"
        from = "09:00"
        until = "16:00"
        timezone = "Europe/Berlin"

        [[env.staging.freeze]]
        name = "migration"
        from = "2026-03-05 12:00"
        until = "2026-03-05 14:00"
        timezone = "Europe/Berlin"
        """,
    )
    (inside,) = status(ws.project(), "staging", now=berlin(2026, 3, 4, 10))
    assert inside.freeze is None  # the window's end at 16:00 is not announced: it is daily
    (closing,) = status(ws.project(), "staging", now=berlin(2026, 3, 4, 15))
    assert closing.freeze is not None and closing.freeze["state"] == "upcoming"
    assert closing.freeze["text"] == (
        "freeze 'migration' starts Thu 12:00 Europe/Berlin (until 2026-03-05 14:00)"
    )
    (weekend,) = status(ws.project(), "staging", now=berlin(2026, 3, 7, 12))
    assert weekend.freeze is not None
    assert weekend.freeze["state"] == "active" and weekend.freeze["kind"] == "outside-window"
    assert weekend.freeze["opens_at"] == berlin(2026, 3, 9, 9)
    assert weekend.freeze["text"] == (
        "outside the allowed change windows until 2026-03-09 09:00 Europe/Berlin, "
        "when window 'window-1' opens"
    )
    assert weekend.to_json()["freeze"] == weekend.freeze
