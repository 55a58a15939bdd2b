"""The digest's phrasing, shared by every format so a chat message, an email and the terminal
say the same thing in the same words, for readers who are not engineers.
"""

from __future__ import annotations

import time

from lastgood import units
from lastgood.report.digest import Change, Digest, EnvDigest, Restore

RESULTS = {
    "succeeded": "live, passed its checks",
    "failed-restored": "failed its checks, rolled back",
    "failed": "failed, NOT rolled back",
    "interrupted": "interrupted",
    "running": "in progress",
}
HOW = {"auto-rollback": "automatic", "rollback": "by hand", "offline-rollback": "offline"}
INCIDENTS = {
    "deploy-failed": "deploy failed",
    "health-failed": "health check failed",
    "restore-failed": "restore failed",
}


def seconds(value: float | None) -> str:
    """A duration read at a glance: ``6 ms``, ``0.4 s``, ``5 min``, ``2 hours``, ``3 days``."""
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} min" if not rest else f"{minutes} min {rest} s"
    if value < 86400:
        return plural(round(value / 3600), "hour")
    return plural(round(value / 86400), "day")


def ago(age: float) -> str:
    if age < 60:
        return "just now"
    if age < 3600:
        return plural(round(age / 60), "minute") + " ago"
    return seconds(age) + " ago"


plural = units.plural


def when(epoch: float) -> str:
    """Local time to the minute: a digest is read hours later, seconds would be noise."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(epoch))


def label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def title(digest: Digest) -> str:
    return f"lastgood digest: {day(digest.since)} to {day(digest.until)}"


def period(digest: Digest) -> str:
    return f"from {when(digest.since)} to {when(digest.until)}"


def nothing_happened(digest: Digest) -> str:
    return f"Nothing happened {period(digest)}: no changes, no incidents, no rollbacks, no drills."


def headline(env: EnvDigest) -> str:
    """One sentence: ``staging: 4 changes by 2 people, 1 incident, rolled back automatically
    in 0.4 s (budget 5 min), last drill 3 days ago: passed``."""
    parts = [_changes(env), plural(len(env.incidents), "incident") if env.incidents else ""]
    parts += [_rollbacks(env), _drift(env), _drill(env)]
    return f"{env.env}: " + ", ".join(part for part in parts if part)


def now(env: EnvDigest) -> str:
    return f"live now {label(env.live_version)}, last known good {label(env.last_good)}"


def summary(digest: Digest) -> str:
    """The digest in a few lines: its title, then one headline per environment."""
    lines = [title(digest)]
    if digest.quiet:
        lines.append(nothing_happened(digest))
    lines += [headline(env) for env in digest.envs]
    if digest.documents:
        lines.append(plural(len(digest.documents), "document") + " changed")
    return "\n".join(lines)


def _changes(env: EnvDigest) -> str:
    if not env.changes:
        return "no changes"
    people = plural(len(env.people), "person", "people")
    return f"{plural(len(env.changes), 'change')} by {people}"


def _rollbacks(env: EnvDigest) -> str:
    if not env.rollbacks:
        return ""
    budget = f"budget {seconds(env.budget)}"
    if env.over_budget:
        budget = f"{env.over_budget} OVER the {budget}"
    if len(env.rollbacks) == 1:
        only = env.rollbacks[0]
        how = {"automatic": "automatically", "by hand": "by hand"}.get(HOW[only.kind], "offline")
        return f"rolled back {how} in {seconds(only.time_to_active)} ({budget})"
    return (
        f"{len(env.rollbacks)} rollbacks ({env.automatic} automatic, {env.manual} by hand), "
        f"restored in {seconds(env.restore_p50)} typically and {seconds(env.restore_max)} at "
        f"most ({budget})"
    )


def _drift(env: EnvDigest) -> str:
    if not (env.drift_detected or env.drift_repaired):
        return ""
    return f"drift detected {env.drift_detected}x, repaired {env.drift_repaired}x"


def _drill(env: EnvDigest) -> str:
    overdue = " (drill overdue)" if env.drill_overdue else ""
    if env.last_drill is None or env.last_drill_age is None:
        return "" if env.protected else f"never drilled{overdue}"
    return f"last drill {ago(env.last_drill_age)}: {env.last_drill.status}{overdue}"


def result(change: Change) -> str:
    if change.result == "succeeded" and not change.checked:
        return "live; no checks configured, so nothing proved it healthy"
    return RESULTS.get(change.result, change.result)


def verified_in(restore: Restore, checked: bool) -> str:
    """The second restore figure, or why there is none worth the name."""
    if not checked:
        return "not verified (no checks configured)"
    return f"verified in {seconds(restore.time_to_verified)}"


def restore_verdict(restore: Restore, budget: float) -> str:
    if restore.status != "succeeded":
        return f"{restore.status}: counts as over budget"
    return "OVER budget" if restore.over_budget else f"within budget ({seconds(budget)})"
