"""The digest as plain text: for the terminal and for messages that cannot carry markup."""

from __future__ import annotations

from lastgood.report import words as w
from lastgood.report.digest import Digest, EnvDigest


def render_text(digest: Digest) -> str:
    lines = [w.title(digest), w.period(digest), ""]
    if digest.quiet:
        lines += [w.nothing_happened(digest), ""]
    for env in digest.envs:
        lines += _env(env)
    if digest.documents:
        lines.append("documents changed")
        for doc in digest.documents:
            versions = ", ".join(f"v{n}" for n in doc.versions)
            lines.append(
                f"  {doc.name}: {versions} (+{doc.added} -{doc.removed} lines), "
                f"last at {w.when(doc.last_at)}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _env(env: EnvDigest) -> list[str]:
    lines = [w.headline(env), f"  {w.now(env)}"]
    if env.changes:
        lines.append("  changes:")
        for c in env.changes:
            why = f" ({c.reason})" if c.reason else ""
            lines.append(
                f"    {w.when(c.at)}  {w.label(c.version)} by {c.actor}{why}: {w.result(c)}"
            )
        people = ", ".join(f"{name} {count}" for name, count in env.people.items())
        lines.append(f"  who: {people}")
    if env.incidents:
        lines.append("  incidents:")
        lines += [
            f"    {w.when(i.at)}  {w.INCIDENTS.get(i.kind, i.kind)}: {i.message}"
            for i in env.incidents
        ]
    lines += _rollbacks(env) + _drills(env)
    if env.drift_detected or env.drift_repaired:
        lines.append(f"  drift: detected {env.drift_detected}, repaired {env.drift_repaired}")
    return [*lines, ""]


def _rollbacks(env: EnvDigest) -> list[str]:
    if not env.rollbacks:
        return []
    lines = ["  rollbacks:"]
    for r in env.rollbacks:
        lines.append(
            f"    {w.when(r.at)}  {w.HOW.get(r.kind, r.kind)} {w.label(r.from_version)} → "
            f"{w.label(r.to_version)} by {r.actor}: restored in {w.seconds(r.time_to_active)}, "
            f"{w.verified_in(r, env.checked)}, {w.restore_verdict(r, env.budget)}"
        )
    lines.append(
        f"  restored in: p50 {w.seconds(env.restore_p50)}, max {w.seconds(env.restore_max)}; "
        + (
            f"verified in: p50 {w.seconds(env.verified_p50)}, max {w.seconds(env.verified_max)}; "
            if env.checked
            else "not verified (no checks configured); "
        )
        + f"budget {w.seconds(env.budget)} (on verified), {env.over_budget} over budget"
    )
    return lines


def _drills(env: EnvDigest) -> list[str]:
    lines = [
        f"  drill {w.when(d.at)}: {d.status}, restored in {w.seconds(d.time_to_restore)}"
        for d in env.drills
    ]
    if env.drill_overdue:
        lines.append(f"  ! {env.drill_overdue}")
    return lines
