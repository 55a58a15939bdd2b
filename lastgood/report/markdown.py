"""The digest as Markdown, for chat: a heading, one bold line per environment, short tables."""

from __future__ import annotations

from lastgood.report import words as w
from lastgood.report.digest import Digest, EnvDigest


def render_markdown(digest: Digest) -> str:
    lines = [f"## {w.title(digest)}", "", f"_{w.period(digest)}_", ""]
    if digest.quiet:
        lines += [w.nothing_happened(digest), ""]
    for env in digest.envs:
        lines += _env(env)
    if digest.documents:
        lines += ["### Documents changed", "", "| document | versions | lines |", "|---|---|---|"]
        for doc in digest.documents:
            versions = ", ".join(f"v{n}" for n in doc.versions)
            lines.append(f"| {cell(doc.name)} | {versions} | +{doc.added} -{doc.removed} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def cell(text: str) -> str:
    """Table-safe and inert: a pipe or a newline would break the row, a ``<`` start markup."""
    for char in "\\|<>*_`[]":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ").strip()


def _env(env: EnvDigest) -> list[str]:
    name, rest = w.headline(env).split(": ", 1)
    lines = [f"### {name}", "", f"**{rest}**", "", f"{w.now(env).capitalize()}.", ""]
    if env.changes:
        lines += ["| when | version | who | why | result |", "|---|---|---|---|---|"]
        lines += [
            f"| {w.when(c.at)} | {w.label(c.version)} | {cell(c.actor)} | {cell(c.reason)} "
            f"| {w.result(c)} |"
            for c in env.changes
        ]
        lines.append("")
    if env.incidents:
        lines += [
            f"- **{w.INCIDENTS.get(i.kind, i.kind)}** {w.when(i.at)}: {cell(i.message)}"
            for i in env.incidents
        ]
        lines.append("")
    if env.rollbacks:
        lines += [
            f"Restored in: p50 **{w.seconds(env.restore_p50)}**, max "
            f"**{w.seconds(env.restore_max)}**; "
            + (
                f"verified in: p50 **{w.seconds(env.verified_p50)}**, max "
                f"**{w.seconds(env.verified_max)}** "
                if env.checked
                else "not verified (no checks configured) "
            )
            + f"(budget {w.seconds(env.budget)} on verified, {env.over_budget} over)",
            "",
        ]
    if env.drill_overdue:
        lines += [f"⚠ {env.drill_overdue}", ""]
    return lines
