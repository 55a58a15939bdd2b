"""Gradual rollout: the settings, what the pointer says, and who is in which cohort.

A served environment with ``[env.NAME.rollout]`` deploys a new version to a growing share of its
consumers before everyone gets it. Its target keeps ``current`` on the stable version for the
whole rollout; beside it, ``PATH/rollout.json`` (the *pointer*) names the new release and the
share of consumers that get it now. The server publishes both and gives each consumer the one
its cohort calls for; ending the rollout either way is one atomic change on disk: ``current``
switched to the new release (promoted), or the pointer removed (everyone back on stable).

A consumer's cohort is a stable hash of the environment, the rollout's *salt* and its id, a
number in [0, 100): it gets the new version while that number is below the step's percentage.
The same consumer keeps its number for the whole rollout, so the 5 % who got the new version
first are still in at 25 %. The salt is drawn at random when a rollout starts and kept in the
pointer, so the next rollout of the environment sends a different 5 % first (a pointer written
before salts existed has none: its cohorts are the unsalted hash).

This module is pure logic (it parses and computes; it never touches a file or the store), so the
server's read path, the served target and the operations all import it. The pointer's files on
the target (read, written and removed atomically) belong to the target layer:
:mod:`lastgood.targets.rollout_pointer`.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

from lastgood.errors import ConfigError, TargetError
from lastgood.record import Record, as_dict
from lastgood.units import parse_duration

POINTER = "rollout.json"
_KEYS = {"steps", "step_bake", "salt"}


class RolloutPlan(Record):
    """``[env.NAME.rollout]``: the percentages, in order, and how long each step bakes."""

    steps: tuple[float, ...]
    step_bake: float
    salt: str = ""  # fixed by the config: the same consumers go first in every rollout

    def describe(self) -> str:
        return " → ".join(percent_text(step) for step in self.steps)


class Pointer(Record):
    """What ``PATH/rollout.json`` says: the release being rolled out, to what share, since when."""

    release: str  # the new release's name (``v8-3f2a9c1d``)
    version: int
    stable: str | None  # the release ``current`` kept during the rollout
    stable_version: int | None
    percent: float
    step: int  # 1-based index into ``steps``
    steps: tuple[float, ...]
    started_at: float
    step_started_at: float
    deployment: int | None
    salt: str = ""  # drawn when the rollout starts; "" in a pointer from before salts

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)

    def includes(self, env: str, consumer: str | None) -> bool:
        """Whether ``consumer`` of ``env`` gets the new version at this step."""
        return gets_new(env, consumer, self.percent, self.salt)

    def progress(self) -> str:
        """``step 2/3 (25%)``: where the rollout stands, for people."""
        return f"step {self.step}/{len(self.steps)} ({percent_text(self.percent)})"


def percent_text(percent: float) -> str:
    return f"{percent:g}%"


def cohort(env: str, consumer: str, salt: str = "") -> float:
    """The consumer's place in [0, 100): the same for the whole rollout whose pointer holds
    ``salt`` (another rollout draws another salt, so other consumers go first), spread evenly
    by SHA-256, so a step's share of consumers is about its percentage. Without a salt (a
    pointer written by an older lastgood): SHA-256 of ``env:consumer``, as it was."""
    key = f"{env}:{salt}:{consumer}" if salt else f"{env}:{consumer}"
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def new_salt() -> str:
    """A rollout's salt: random, so no consumer is always first."""
    import secrets

    return secrets.token_hex(8)


def gets_new(env: str, consumer: str | None, percent: float, salt: str = "") -> bool:
    """Whether ``consumer`` is in the cohort that gets the new version at ``percent`` in the
    rollout salted with ``salt``. A reader that gives no id cannot be kept in a cohort, so it
    always gets the stable version."""
    if not consumer:
        return False
    return percent >= 100 or cohort(env, consumer, salt) < percent


# ---- settings ---------------------------------------------------------------------------------


def parse_plan(table: Any, prefix: str, where: str, *, target: str, bake: float) -> RolloutPlan:
    """``[env.NAME.rollout]`` checked completely: a served target, percentages strictly rising
    to 100, a step bake (default: the environment's bake; 0 ends each step on its first green
    round). Reads only."""
    where_key = f"{prefix}rollout"
    if not isinstance(table, dict):
        raise ConfigError(
            f"{where_key} in {where} must be a table",
            hint=f'write [{where_key}] with steps = ["5%", "25%", "100%"] under it',
        )
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {where_key}.{unknown[0]} in {where}",
            hint="[env.NAME.rollout] takes steps, step_bake and salt",
        )
    if target != "served":
        raise ConfigError(
            f"{where_key} in {where} needs a served target, not {target!r}: only the server can "
            "give some consumers the new version and the others the old one",
            hint='set target = { type = "served" }, or remove the rollout table',
        )
    steps = _parse_steps(table.get("steps"), f"{where_key}.steps", where)
    step_bake = parse_duration(table.get("step_bake", bake), name=f"{where_key}.step_bake")
    salt = table.get("salt", "")
    # "" (or only spaces) would silently mean "a new random salt per rollout": refused
    if "salt" in table and not _good_salt(salt):
        raise ConfigError(
            f"{where_key}.salt in {where} must be printable text of 1 to 64 characters, "
            f"not {salt!r}",
            hint='write salt = "canaries-first" to put the same consumers first in every '
            "rollout, or leave it out for a new random order each time",
        )
    return RolloutPlan(steps=steps, step_bake=step_bake, salt=salt)


def _good_salt(salt: Any) -> bool:
    return isinstance(salt, str) and bool(salt.strip()) and salt.isprintable() and len(salt) <= 64


def _parse_steps(value: Any, key: str, where: str) -> tuple[float, ...]:
    example = 'steps = ["5%", "25%", "100%"]'
    if value is None:
        raise ConfigError(f"{key} is missing in {where}: a rollout needs its steps", hint=example)
    if not isinstance(value, list) or not value:
        problem = "is empty" if value == [] else "must be a list of percentages"
        raise ConfigError(f"{key} in {where} {problem}", hint=example)
    steps = tuple(_percent(item, key, where) for item in value)
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise ConfigError(f"{key} = {value!r} in {where} must rise step by step", hint=example)
    if steps[-1] != 100:
        raise ConfigError(f'{key} = {value!r} in {where} must end at "100%"', hint=example)
    if len(steps) < 2:
        raise ConfigError(
            f"{key} = {value!r} in {where} has no step below 100%: that is a plain deploy",
            hint=example,
        )
    return steps


def _percent(item: Any, key: str, where: str) -> float:
    text = item.strip() if isinstance(item, str) else None
    if text is None or not text.endswith("%"):
        raise ConfigError(f"{key}: {item!r} in {where} is not a percentage", hint='write "5%"')
    try:
        percent = float(text[:-1])
    except ValueError:
        percent = -1.0
    if not 0 < percent <= 100:
        raise ConfigError(
            f"{key}: {item!r} in {where} is not a percentage above 0% and up to 100%",
            hint='write "5%"',
        )
    return percent


def parse_pointer(raw: bytes, path: Path) -> Pointer:
    """A pointer from the bytes of ``path``; TargetError when they do not describe a rollout."""
    import json

    try:
        data = json.loads(raw)
        return Pointer(**{**data, "steps": tuple(data["steps"])})
    except (ValueError, TypeError, KeyError) as exc:
        raise TargetError(
            f"{path} does not describe a rollout ({exc})",
            hint="lastgood writes it atomically, so it was edited by hand: remove it to put "
            "every consumer back on the stable version",
        ) from exc
