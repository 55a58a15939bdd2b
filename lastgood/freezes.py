"""Freezes and allowed change windows: when an environment takes no changes, and until when.

A *freeze* closes an environment for a period: a fixed one (``from``/``until``, a year-end close)
or a recurring one (a cron expression for each start plus a ``duration``: every weekend). A
*window* works the other way round: once an environment has any, changes are allowed only inside
one of them. ``[[env.NAME.freeze]]`` and ``[[env.NAME.window]]`` (docs/configuration.md) are read
into a :class:`ChangeCalendar`, which answers three questions about a moment: is it closed (and
by what, until when), what closes next, and when may changes go live again.

Pure logic: no I/O and no clock; every question takes the moment it is about, so tests and the
deploy gate decide the time. Rollbacks are never held by a freeze: this module knows nothing of
deploys, the gate that asks it decides what a closure holds.

Cheap to import, on purpose: ``lastgood.config`` is on the rollback fast lane and gives every
environment a calendar, empty or not, so :mod:`zoneinfo` and :mod:`cronsim` are imported only
once a freeze or a window is configured and read or asked about.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

from lastgood.errors import ConfigError
from lastgood.record import Record

FREEZE_KEYS = ("name", "from", "until", "cron", "duration", "timezone", "reason")
WINDOW_KEYS = ("name", "days", "from", "until", "timezone")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON = 366 * 86400.0  # opens_at looks this far ahead before it answers "never" (math.inf)
_STEPS = 1000  # back-to-back closures opens_at walks through before it answers "never"
_CHAIN = 500  # overlapping occurrences of one recurring freeze merged into one closure
_FIXED = 'from = "2026-12-20 00:00", until = "2027-01-04 09:00", timezone = "Europe/Berlin"'
_RECURRING = 'cron = "0 16 * * FRI", duration = "65h", timezone = "Europe/Berlin"'
_WINDOW = 'days = "mon-fri", from = "09:00", until = "16:00", timezone = "Europe/Berlin"'
_EITHER = f"a fixed period: {_FIXED}; or a recurring one: {_RECURRING}"


class FreezeSpec(Record):
    """One ``[[env.NAME.freeze]]``: fixed (``starts``/``ends``, epoch seconds) or recurring
    (``cron`` gives each start in ``timezone``; each lasts ``duration`` seconds on the local
    clock)."""

    name: str
    timezone: str = "UTC"
    reason: str = ""
    starts: float | None = None
    ends: float | None = None
    cron: str | None = None
    duration: float = 0.0


class WindowSpec(Record):
    """One ``[[env.NAME.window]]``: on ``days`` (0 is Monday), from ``opens`` to ``closes``
    minutes after local midnight in ``timezone`` (``closes`` 1440 is the end of the day)."""

    name: str
    days: tuple[int, ...]
    opens: int
    closes: int
    timezone: str = "UTC"


class Closure(Record):
    """A period in which an environment takes no changes: a freeze in force (``kind``
    ``"freeze"``) or the time between two windows (``"outside-window"``, named after the window
    that ends it). Epoch seconds; ``ends`` may be ``math.inf``."""

    name: str
    reason: str
    kind: str
    starts: float
    ends: float


class ChangeCalendar(Record):
    """An environment's freezes and windows; empty, it is never closed."""

    freezes: tuple[FreezeSpec, ...] = ()
    windows: tuple[WindowSpec, ...] = ()

    def closed_at(self, at: float) -> Closure | None:
        """The freeze in force at ``at`` (the one ending last, if several are); else, when
        windows are configured and ``at`` is outside all of them, the closure from the end of
        the previous window to the start of the next; else None: changes are allowed."""
        frozen = [c for spec in self.freezes if (c := _freeze_at(spec, at)) is not None]
        if frozen:
            return max(frozen, key=lambda closure: closure.ends)
        if self.windows and _window_at(self.windows, at) is None:
            return _outside(self.windows, at)
        return None

    def next_closure(self, at: float, within: float) -> Closure | None:
        """The first closure that starts after ``at`` and before ``at + within`` (whether or
        not one is in force at ``at``), or None."""
        upcoming = [c for spec in self.freezes if (c := _next_freeze(spec, at)) is not None]
        if self.windows:
            upcoming += [c for c in [_next_outside(self.windows, at)] if c is not None]
        soon = [closure for closure in upcoming if closure.starts < at + within]
        return min(soon, key=lambda closure: (closure.starts, -closure.ends), default=None)

    def opens_at(self, at: float) -> float:
        """The earliest moment ≥ ``at`` when changes are allowed, walking through overlapping
        and back-to-back freezes and windows. ``math.inf`` when changes stay closed for longer
        than :data:`HORIZON` (a year) or through more than a thousand closures in a row."""
        moment = at
        for _ in range(_STEPS):
            closure = self.closed_at(moment)
            if closure is None:
                return moment
            if closure.ends - at > HORIZON:
                break
            moment = closure.ends
        return math.inf

    def describe(self, closure: Closure) -> str:
        """The closure in words, for status and refusals: "freeze 'year-end' (year-end
        close) until 2027-01-04 09:00 Europe/Berlin"."""
        zone = self._zone_of(closure)
        until = "until further notice"
        if not math.isinf(closure.ends):
            until = f"until {_local(closure.ends, zone)} {zone}"
        if closure.kind == "freeze":
            return f"freeze {closure.name!r}{_reason(closure)} {until}"
        return f"outside the allowed change windows {until}, when window {closure.name!r} opens"

    def describe_start(self, closure: Closure) -> str:
        """An upcoming closure in words: "freeze 'weekend' starts Fri 16:00 Europe/Berlin
        (until 2026-03-30 09:00)"."""
        zone = self._zone_of(closure)
        starts = f"{_local(closure.starts, zone, weekday=True)} {zone}"
        until = "" if math.isinf(closure.ends) else f" (until {_local(closure.ends, zone)})"
        if closure.kind == "freeze":
            return f"freeze {closure.name!r}{_reason(closure)} starts {starts}{until}"
        return f"outside the allowed change windows from {starts}{until}"

    def _zone_of(self, closure: Closure) -> str:
        specs: tuple[FreezeSpec | WindowSpec, ...] = (
            self.freezes if closure.kind == "freeze" else self.windows
        )
        return next((spec.timezone for spec in specs if spec.name == closure.name), "UTC")


# ---- freezes ---------------------------------------------------------------------------------


def _freeze_at(spec: FreezeSpec, at: float) -> Closure | None:
    """``spec``'s occurrence in force at ``at``; a recurring freeze whose next occurrences start
    before this one ends lasts until the last of them ends."""
    if spec.cron is None:
        assert spec.starts is not None and spec.ends is not None
        inside = spec.starts <= at < spec.ends
        return _closure(spec, spec.starts, spec.ends) if inside else None
    start = _last_start(spec, at)
    if start is None or _end_of(spec, start) <= at:
        return None
    return _closure(spec, start, _chain_end(spec, start))


def _next_freeze(spec: FreezeSpec, after: float) -> Closure | None:
    """``spec``'s first occurrence that starts strictly after ``after``."""
    if spec.cron is None:
        assert spec.starts is not None and spec.ends is not None
        return _closure(spec, spec.starts, spec.ends) if spec.starts > after else None
    start = next(_starts_after(spec, after), None)
    return None if start is None else _closure(spec, start, _chain_end(spec, start))


def _closure(spec: FreezeSpec, starts: float, ends: float) -> Closure:
    return Closure(name=spec.name, reason=spec.reason, kind="freeze", starts=starts, ends=ends)


def _last_start(spec: FreezeSpec, at: float) -> float | None:
    """The latest start of a recurring freeze at or before ``at`` (starts fall on whole
    seconds: cronsim, going backwards, returns the first match strictly before its moment)."""
    from cronsim import CronSim

    assert spec.cron is not None
    moment = datetime.fromtimestamp(math.floor(at) + 1, _zone(spec.timezone))
    found = next(CronSim(spec.cron, moment, reverse=True), None)
    return None if found is None else found.timestamp()


def _starts_after(spec: FreezeSpec, after: float) -> Iterator[float]:
    """The starts of a recurring freeze strictly after ``after``, in order (DST handled by
    cronsim as Debian cron does: a start in the spring gap moves to the first minute after it,
    one in the repeated autumn hour runs once)."""
    from cronsim import CronSim

    assert spec.cron is not None
    for start in CronSim(spec.cron, datetime.fromtimestamp(after, _zone(spec.timezone))):
        yield start.timestamp()


def _chain_end(spec: FreezeSpec, start: float) -> float:
    """When the occurrence starting at ``start`` ends, counting later occurrences that start
    before it has ended ("0 16 * * FRI,SAT" lasting 65 h is one closure, not two)."""
    ends = _end_of(spec, start)
    starts = _starts_after(spec, start)
    for _ in range(_CHAIN):
        following = next(starts, None)
        if following is None or following > ends:
            break
        ends = max(ends, _end_of(spec, following))
    return ends


def _end_of(spec: FreezeSpec, start: float) -> float:
    """``duration`` after ``start`` on the local clock: a 65 h freeze from Friday 16:00 ends
    on Monday at 09:00 whether or not the clocks changed over the weekend."""
    local = datetime.fromtimestamp(start, _zone(spec.timezone))
    return (local + timedelta(seconds=spec.duration)).timestamp()


# ---- windows ---------------------------------------------------------------------------------


def _window_on(window: WindowSpec, day: date) -> tuple[float, float] | None:
    """The window's span on the local ``day``, or None when it is not one of its days."""
    if day.weekday() not in window.days:
        return None
    zone = _zone(window.timezone)
    return _at_minute(day, window.opens, zone), _at_minute(day, window.closes, zone)


def _at_minute(day: date, minutes: int, zone: tzinfo) -> float:
    moment = day + timedelta(days=minutes // 1440)
    hours, minute = divmod(minutes % 1440, 60)
    return datetime.combine(moment, time(hours, minute), tzinfo=zone).timestamp()


def _days_around(window: WindowSpec, at: float, offsets: range) -> Iterator[date]:
    """The local dates, in the window's zone, ``offsets`` days from the one ``at`` falls on."""
    today = datetime.fromtimestamp(at, _zone(window.timezone)).date()
    for offset in offsets:
        yield today + timedelta(days=offset)


def _window_at(windows: tuple[WindowSpec, ...], at: float) -> tuple[WindowSpec, float] | None:
    """A window open at ``at`` and when it closes (the latest closing one), or None."""
    found: list[tuple[WindowSpec, float]] = []
    for window in windows:
        # only the day ``at`` falls on: no window runs past its local midnight
        span = _window_on(window, next(_days_around(window, at, range(1))))
        if span is not None and span[0] <= at < span[1]:
            found.append((window, span[1]))
    return max(found, key=lambda item: item[1], default=None)


def _opening_after(windows: tuple[WindowSpec, ...], at: float) -> tuple[WindowSpec, float] | None:
    """The first window start strictly after ``at`` (each window recurs within a week)."""
    found = [
        (window, span[0])
        for window in windows
        for day in _days_around(window, at, range(9))
        if (span := _window_on(window, day)) is not None and span[0] > at
    ]
    return min(found, key=lambda item: item[1], default=None)


def _closing_before(windows: tuple[WindowSpec, ...], at: float) -> float | None:
    """The last window end at or before ``at``."""
    ends = [
        span[1]
        for window in windows
        for day in _days_around(window, at, range(-8, 1))
        if (span := _window_on(window, day)) is not None and span[1] <= at
    ]
    return max(ends, default=None)


def _outside(windows: tuple[WindowSpec, ...], at: float) -> Closure:
    """The closure around ``at``, a moment outside every window."""
    opening = _opening_after(windows, at)
    starts = _closing_before(windows, at)
    return Closure(
        name=opening[0].name if opening else "",
        reason="outside the allowed change windows",
        kind="outside-window",
        starts=at if starts is None else starts,
        ends=math.inf if opening is None else opening[1],
    )


def _next_outside(windows: tuple[WindowSpec, ...], at: float) -> Closure | None:
    """The first time after ``at`` that falls outside every window, as a closure: the end of
    the window open now (or of the next one), walking through windows that overlap it."""
    moment: float | None = at
    if _window_at(windows, at) is None:
        opening = _opening_after(windows, at)
        moment = opening[1] if opening else None
    for _ in range(_STEPS):
        if moment is None:
            return None
        inside = _window_at(windows, moment)
        if inside is None:
            return _outside(windows, moment)
        moment = inside[1]
    return None


# ---- time zones and words --------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    """The time zone called ``name``; "UTC" needs no time zone database."""
    if name == "UTC":
        return UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _local(at: float, zone: str, *, weekday: bool = False) -> str:
    """``2027-01-04 09:00``, or ``Fri 16:00`` for a moment within the coming days."""
    moment = datetime.fromtimestamp(at, _zone(zone))
    if weekday:
        return f"{DAY_NAMES[moment.weekday()].title()} {moment:%H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def _reason(closure: Closure) -> str:
    return f" ({closure.reason})" if closure.reason else ""


# ---- reading the configuration ---------------------------------------------------------------

Spec = TypeVar("Spec", FreezeSpec, WindowSpec)


def parse_calendar(table: dict[str, Any], prefix: str, where: str) -> ChangeCalendar:
    """The ``freeze`` and ``window`` keys of one ``[env.NAME]`` table (``prefix`` is
    ``"env.NAME."``, ``where`` the file), every key checked: a ConfigError names the entry
    (``env.NAME.freeze #2``), the key and the file, and shows a correct example."""
    if "freeze" not in table and "window" not in table:
        return ChangeCalendar()
    return ChangeCalendar(
        freezes=_parse_all(table.get("freeze", []), f"{prefix}freeze", where, _parse_freeze),
        windows=_parse_all(table.get("window", []), f"{prefix}window", where, _parse_window),
    )


def _parse_all(
    items: Any, key: str, where: str, parse_one: Callable[[dict[str, Any], str, int, str], Spec]
) -> tuple[Spec, ...]:
    example = _WINDOW if key.endswith("window") else _FIXED
    if not isinstance(items, list):
        raise ConfigError(
            f"{key} in {where} must be an array of tables ([[{key}]]), not a single value",
            hint=f"write [[{key}]] on its own line, then one key per line: {example}",
        )
    specs: list[Spec] = []
    for number, item in enumerate(items, 1):
        label = f"{key} #{number}"
        if not isinstance(item, dict):
            raise ConfigError(
                f"{label} in {where} must be a table", hint=f"write [[{key}]] {example}"
            )
        spec = parse_one(item, label, number, where)
        if any(other.name == spec.name for other in specs):
            raise ConfigError(
                f"{label} in {where}: two entries of {key} are named {spec.name!r}",
                hint=f'give each its own name, e.g. name = "{spec.name}-2"',
            )
        specs.append(spec)
    return tuple(specs)


def _parse_freeze(item: dict[str, Any], label: str, number: int, where: str) -> FreezeSpec:
    _reject_unknown(item, FREEZE_KEYS, label, where, _EITHER)
    fixed = "from" in item or "until" in item
    if fixed == ("cron" in item or "duration" in item):
        which = "has both" if fixed else "has neither"
        raise ConfigError(
            f"{label} in {where} needs either from and until (a fixed period) or cron and "
            f"duration (a recurring one): it {which}",
            hint=f"write {_EITHER}",
        )
    zone = _timezone(item, label, where, _FIXED if fixed else _RECURRING)
    name = _text(item, "name", f"freeze-{number}", label, where)
    reason = _text(item, "reason", "", label, where)
    if fixed:
        starts, ends = _period(item, label, zone, where)
        return FreezeSpec(name=name, timezone=zone, reason=reason, starts=starts, ends=ends)
    cron, duration = _recurrence(item, label, where)
    return FreezeSpec(name=name, timezone=zone, reason=reason, cron=cron, duration=duration)


def _parse_window(item: dict[str, Any], label: str, number: int, where: str) -> WindowSpec:
    _reject_unknown(item, WINDOW_KEYS, label, where, _WINDOW)
    _require(item, ("from", "until"), label, where, f"a window needs both ends: {_WINDOW}")
    opens = _clock(item["from"], f"{label}.from", where)
    closes = _clock(item["until"], f"{label}.until", where, end=True)
    if closes <= opens:
        raise ConfigError(
            f"{label} in {where} closes at until = {item['until']!r}, not after it opens at "
            f"from = {item['from']!r}: a window cannot run past midnight",
            hint='split an overnight window in two: from = "22:00", until = "24:00" on one day '
            'and from = "00:00", until = "06:00" on the next',
        )
    return WindowSpec(
        name=_text(item, "name", f"window-{number}", label, where),
        days=_days(item.get("days", "daily"), f"{label}.days", where),
        opens=opens,
        closes=closes,
        timezone=_timezone(item, label, where, _WINDOW),
    )


def _reject_unknown(
    item: dict[str, Any], known: tuple[str, ...], label: str, where: str, example: str
) -> None:
    for key in item:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            guess = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)};"
            raise ConfigError(
                f"{label} in {where} has an unknown key {key!r}", hint=f"{guess} e.g. {example}"
            )


def _require(
    item: dict[str, Any], keys: tuple[str, ...], label: str, where: str, hint: str
) -> None:
    for key in keys:
        if key not in item:
            raise ConfigError(f"{label} in {where} has no {key}", hint=hint)


def _text(item: dict[str, Any], key: str, default: str, label: str, where: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or (key == "name" and not value.strip()):
        example = 'name = "year-end"' if key == "name" else 'reason = "year-end close"'
        raise ConfigError(
            f"{label}.{key} = {value!r} in {where} must be a non-empty string",
            hint=f"write it in quotes: {example}",
        )
    return value


def _timezone(item: dict[str, Any], label: str, where: str, example: str) -> str:
    """The entry's ``timezone``: an IANA name the time zone database knows."""
    value = item.get("timezone", "UTC")
    if isinstance(value, str) and _known_zone(value):
        return value
    import difflib
    import zoneinfo

    known = sorted(zoneinfo.available_timezones())
    close = difflib.get_close_matches(str(value), known, n=1) if isinstance(value, str) else []
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"{label}.timezone = {value!r} in {where} is not a known IANA time zone",
        hint=f'{guess}write a name like "Europe/Berlin", "America/New_York" or "UTC", e.g. '
        f"{example}",
    )


def _known_zone(name: str) -> bool:
    try:
        _zone(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _period(item: dict[str, Any], label: str, zone: str, where: str) -> tuple[float, float]:
    """A fixed freeze's ``from`` and ``until``, as epoch seconds."""
    _require(item, ("from", "until"), label, where, f"a fixed freeze needs both: {_FIXED}")
    starts = _moment(item["from"], f"{label}.from", zone, where)
    ends = _moment(item["until"], f"{label}.until", zone, where)
    if ends <= starts:
        raise ConfigError(
            f"{label}.until = {item['until']!r} in {where} is not after from = {item['from']!r}",
            hint=f"a freeze ends after it starts: {_FIXED}",
        )
    return starts, ends


def _moment(value: Any, key: str, zone: str, where: str) -> float:
    """A date and time: local in ``zone`` unless it carries an offset. TOML's own dates and
    date-times (unquoted) are taken too."""
    moment: Any = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    elif isinstance(value, date) and not isinstance(value, datetime):
        moment = datetime.combine(value, time())
    if not isinstance(moment, datetime):
        raise ConfigError(
            f"{key} = {value!r} in {where} is not a date and time",
            hint=f"write local time in the freeze's timezone, {key.rsplit('.', 1)[1]} = "
            '"2026-12-20 00:00", or ISO 8601 with an offset, "2026-12-20T00:00:00+01:00"',
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone))
    return float(moment.timestamp())


def _recurrence(item: dict[str, Any], label: str, where: str) -> tuple[str, float]:
    """A recurring freeze's ``cron`` (five fields, checked now) and ``duration`` (more than 0)."""
    _require(
        item, ("cron", "duration"), label, where, f"a recurring freeze needs both: {_RECURRING}"
    )
    from lastgood import schedule
    from lastgood.units import parse_duration

    cron = item["cron"]
    try:
        if not isinstance(cron, str):
            raise ValueError("it is not a string")
        schedule.validate(cron)
    except ValueError as exc:
        raise ConfigError(
            f"{label}.cron = {cron!r} in {where} is not a valid cron expression: {exc}",
            hint="write five fields, minute hour day-of-month month day-of-week, each start in "
            'the freeze\'s timezone: cron = "0 16 * * FRI" (Fridays 16:00)',
        ) from None
    key = f"{label}.duration"
    try:
        duration = parse_duration(item["duration"], name=key)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message} in {where}", hint=f'{exc.hint}: duration = "65h"'
        ) from None
    if duration <= 0:
        raise ConfigError(
            f"{key} = {item['duration']!r} in {where} must be more than 0",
            hint='say how long each freeze lasts: duration = "65h" (Friday 16:00 to Monday 09:00)',
        )
    return cron, duration


def _clock(value: Any, key: str, where: str, *, end: bool = False) -> int:
    """Minutes after midnight from ``"09:00"`` (or a TOML time); ``"24:00"`` only as an end."""
    import re

    if isinstance(value, time) and not (value.second or value.microsecond):
        return value.hour * 60 + value.minute
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value) if isinstance(value, str) else None
    if match:
        hours, minutes = int(match[1]), int(match[2])
        if minutes < 60 and (hours < 24 or (end and (hours, minutes) == (24, 0))):
            return hours * 60 + minutes
    latest = "24:00" if end else "23:59"
    raise ConfigError(
        f"{key} = {value!r} in {where} is not a time of day from 00:00 to {latest}",
        hint=f"write hours and minutes, local time in the window's timezone: {_WINDOW}",
    )


def _days(value: Any, key: str, where: str) -> tuple[int, ...]:
    """Weekday numbers (0 is Monday) from ``"mon-fri"``, ``"mon,wed,fri"``, a list of names
    or ranges, or ``"daily"``."""
    words = value.split(",") if isinstance(value, str) else value
    days: set[int] = set()
    if isinstance(words, list) and words and all(isinstance(word, str) for word in words):
        for word in words:
            found = _day_range(word.strip().lower())
            if found is None:
                break
            days |= found
        else:
            return tuple(sorted(days))
    raise ConfigError(
        f"{key} = {value!r} in {where} is not a set of days",
        hint='write days = "mon-fri", "mon,wed,fri", ["sat", "sun"] or "daily"',
    )


def _day_range(word: str) -> set[int] | None:
    """``"mon"``, ``"monday"``, ``"fri-mon"`` (wrapping over the weekend) or ``"daily"``."""
    if word == "daily":
        return set(range(7))
    first, dash, last = (part.strip() for part in word.partition("-"))
    start, stop = _day(first), _day(last if dash else first)
    if start is None or stop is None:
        return None
    return {(start + step) % 7 for step in range((stop - start) % 7 + 1)}


def _day(word: str) -> int | None:
    short = word[:3]
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if short in DAY_NAMES and word in (short, full[DAY_NAMES.index(short)]):
        return DAY_NAMES.index(short)
    return None
