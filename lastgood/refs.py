"""The one grammar for version references, used by every command.

``12`` · ``v12`` · a content-hash prefix of 6+ hex digits · ``live`` · ``last-good`` ·
``previous`` · and any of them behind ``ENV:`` (``staging:last-good``). ``live``, ``last-good``
and ``previous`` need an environment: the ``ENV:`` prefix, else the one the command is about,
else the default environment. ``git:REF`` names the version of a git commit (``git:HEAD~1``,
``git:main``, ``git:v2.3``), which is why no environment may be called ``git``.
"""

from __future__ import annotations

import re

from lastgood.errors import NotFoundError, UsageError
from lastgood.record import Record

KEYWORDS = ("live", "last-good", "previous")
GIT = "git"
"""The prefix of a commit reference, ``git:REF``; not an environment's name."""
_NUMBER = re.compile(r"^v?([0-9]+)$", re.IGNORECASE)  # ASCII: \d takes ٣ (Arabic-Indic 3) too
_HASH = re.compile(r"^[0-9a-f]{6,64}$", re.IGNORECASE)
ENV_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
"""What an environment may be called: exactly what ``ENV:REF`` can name."""
LARGEST_VERSION = 2**31 - 1  # PostgreSQL keeps version numbers as INTEGER (32 bits)
LARGEST_SEQ = LARGEST_VERSION  # and the audit chain's seq too; SQLite's INTEGER stops at 2**63-1


class Ref(Record):
    """A parsed reference: ``kind`` is number, hash, git or one of :data:`KEYWORDS`."""

    kind: str
    value: str
    env: str | None = None
    text: str = ""


def parse(text: str) -> Ref:
    """Parse a reference, or raise UsageError that shows the grammar."""
    raw = text.strip()
    if raw.startswith(f"{GIT}:"):
        commit = raw[len(GIT) + 1 :]
        if not commit:
            raise _bad(text)
        return Ref(GIT, commit, None, raw)
    env: str | None = None
    body = raw
    if ":" in raw:
        env, _, body = raw.partition(":")
        if not ENV_NAME.match(env):
            raise _bad(text)
    lowered = body.lower()
    if lowered in KEYWORDS:
        return Ref(lowered, lowered, env, raw)
    number = _NUMBER.match(body)
    if number and (body[0] in "vV" or len(body) < 6):
        return _number(number.group(1), env, raw)
    if _HASH.match(body):
        return Ref("hash", lowered, env, raw)
    if number:
        return _number(number.group(1), env, raw)
    raise _bad(text)


def _number(digits: str, env: str | None, raw: str) -> Ref:
    return Ref("number", str(version_number(digits)), env, raw)


def version_number(digits: str) -> int:
    """A version number; one no store can hold names nothing (NotFoundError, not a crash)."""
    if int(digits) > LARGEST_VERSION:
        raise NotFoundError(
            f"no version v{digits}: version numbers never get that large",
            hint="run 'lastgood log' to list versions",
        )
    return int(digits)


def _bad(text: str) -> UsageError:
    return UsageError(
        f"{text!r} is not a version reference",
        hint="use 12, v12, a hash prefix (6+ hex digits), live, last-good, previous, "
        "ENV:REF such as staging:last-good, or git:COMMIT such as git:HEAD~1",
    )


def not_found(ref: Ref, where: str = "") -> NotFoundError:
    """The error for a reference that parses but names nothing."""
    place = f" on {where}" if where else ""
    return NotFoundError(
        f"{ref.text or ref.value!r} names no version{place}",
        hint="run 'lastgood log' for versions, 'lastgood status' for what is live",
    )
