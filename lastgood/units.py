"""Parse the human units used in ``lastgood.toml`` and on the command line: durations
(``30s``), sizes (``1MiB``) and the start of a period (``--since 7d`` or a date).

The CLI and the server both read ``--since`` through :func:`parse_since`, so a period means the
same thing, and a bad one gets the same words, wherever it is typed.
"""

from __future__ import annotations

import re
from datetime import datetime

from lastgood.errors import ConfigError, UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: object, *, name: str) -> float:
    """Seconds from ``"30s"``, ``"5m"``, ``"250ms"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} = {value!r} is not a duration", hint='write it like "30s"')
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{name} = {value!r} is negative", hint="use 0 or more seconds")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(
            f"{name} = {value!r} is not a duration",
            hint='write a number with a unit: "250ms", "30s", "5m", "2h" or "1d"',
        )
    return float(match.group(1)) * _DURATION_FACTORS[match.group(2)]


def parse_since(text: str, now: float) -> float:
    """Epoch seconds from ``7d`` / ``12h`` (that long before ``now``) or a date or date-time
    (``2024-05-01``, ``2024-05-01T09:00``, local time unless it carries an offset).

    UsageError, quoting ``text``, for anything else, for a moment before 1970 and for one after
    ``now``: a period that ends before it starts is a mistake, not an empty report."""
    if _DURATION.match(text):
        ago = parse_duration(text, name="--since")
        if ago > now:  # before 1970: no ledger reaches that far, and no clock either
            raise UsageError(
                f"--since {text!r} reaches back before 1970", hint='give a shorter one, like "30d"'
            )
        return now - ago
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a date",
            hint='write how far back, like "7d", "24h" or "30m", or a date like "2024-05-01"',
        ) from None
    try:
        at = moment.timestamp()
    except (ValueError, OverflowError):
        at = -1.0  # year 1 and its like: before any clock this runs on
    if at < 0:
        raise UsageError(
            f"--since {text!r} is before 1970", hint='give a later date, or a duration like "30d"'
        )
    if at > now:
        raise UsageError(
            f"--since {text!r} is in the future", hint="give a moment before now, or a duration"
        )
    return at


def parse_size(value: object, *, name: str) -> int:
    """Bytes from ``"1MiB"``, ``"500KB"`` or a bare number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(
            f"{name} = {value!r} is not a size", hint='write it like "512KiB" or "1MiB"'
        )
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _SIZE_FACTORS[unit])


def format_duration(seconds: float | None) -> str:
    """Render seconds for people: ``850 ms``, ``1.8 s``, ``4m 05s``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m {rest:02d}s"
    if seconds < 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h {rest // 60:02d}m"
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d" if rest < 3600 else f"{days}d {rest // 3600}h"


def format_size(size: int) -> str:
    """Render bytes for people: ``512 B``, ``3.4 KiB``, ``1.2 MiB``, ``2.0 GiB``."""
    if size < 1024:
        return f"{size} B"
    amount, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.1f} {unit}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files``; ``many`` for irregular plurals."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
