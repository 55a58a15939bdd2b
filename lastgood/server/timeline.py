"""The timeline picture of the web page: one inline SVG drawn from an environment's ledger.

Each ledger record is a dot on a line, oldest on the left, evenly spaced (real time would crowd
a failed deploy and its automatic rollback into one spot). The colour says what happened, so a
person sees at a glance where things went wrong and how fast they were put right:

- green: a deploy that went live and stayed healthy;
- red: a deploy that failed its checks (or any change that failed);
- orange: an automatic rollback, made by lastgood;
- blue: a rollback a person asked for;
- grey: anything else (drills, no-op deploys, refusals).

Rollbacks carry their restore time. The SVG is built as text with every label XML-escaped, so
it is safe to embed in a page; it draws nothing that needs JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from lastgood.rows import Deployment
from lastgood.units import format_duration

GREEN, RED, ORANGE, BLUE, GREY = "#1e8e3e", "#d93025", "#f29900", "#1a73e8", "#80868b"
LEGEND = (
    (GREEN, "deploy ok"),
    (RED, "failed"),
    (ORANGE, "automatic rollback"),
    (BLUE, "manual rollback"),
    (GREY, "other"),
)
STEP = 96  # horizontal room for one record and its labels
MARGIN = 56
HEIGHT = 170
LINE_Y = 70
FAILED = ("failed", "failed-restored", "interrupted", "unverified")


def colour(record: Deployment) -> str:
    """The colour of one record; failure wins over kind, so a failed rollback shows red."""
    if record.status in FAILED:
        return RED
    if record.kind == "deploy":
        return GREEN if record.status == "succeeded" else GREY
    if record.kind == "auto-rollback":
        return ORANGE
    if record.kind in ("rollback", "offline-rollback"):
        return BLUE
    return GREY


def label(record: Deployment) -> str:
    """What the record did, in a word or two, under its dot."""
    if record.kind == "deploy":
        return {"succeeded": "deploy", "failed-restored": "failed", "failed": "failed"}.get(
            record.status, record.status
        )
    return {"auto-rollback": "auto rollback", "offline-rollback": "offline rollback"}.get(
        record.kind, record.kind
    )


def restore_lines(record: Deployment) -> list[str]:
    """A rollback's two figures as docs/concepts.md defines them, a line each: restored in
    (trigger → active) and verified in (trigger → verified); none for anything else."""
    if not record.is_rollback or record.time_to_active is None:
        return []
    lines = [f"restored in {format_duration(record.time_to_active)}"]
    if record.time_to_verified is not None:
        lines.append(f"verified in {format_duration(record.time_to_verified)}")
    return lines


def _text(x: float, y: float, content: str, css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="middle"{extra}>{escape(content)}</text>'


def _dot(index: int, record: Deployment) -> str:
    """One record: its dot, the version it made live, what happened, and the restore time."""
    x = MARGIN + index * STEP
    version = "-" if record.to_version is None else f"v{record.to_version}"
    parts = [
        f'<g class="event"><title>{escape(_tooltip(record))}</title>',
        f'<circle cx="{x}" cy="{LINE_Y}" r="11" fill="{colour(record)}"/>',
        _text(x, LINE_Y - 20, version, "version"),
        _text(x, LINE_Y + 30, label(record), "what"),
        _text(x, LINE_Y + 46, record.actor, "who"),
    ]
    for number, line in enumerate(restore_lines(record)):  # under the actor, one line each
        parts.append(_text(x, LINE_Y + 62 + 14 * number, line, "took"))
    parts.append("</g>")
    return "".join(parts)


def _tooltip(record: Deployment) -> str:
    before = "-" if record.from_version is None else f"v{record.from_version}"
    after = "-" if record.to_version is None else f"v{record.to_version}"
    why = f": {record.reason}" if record.reason else ""
    return f"#{record.id} {record.kind} {before} → {after}, {record.status}, by {record.actor}{why}"


def _legend(y: float) -> str:
    parts = []
    for index, (fill, name) in enumerate(LEGEND):
        x = MARGIN - 8 + index * 150
        parts.append(f'<circle cx="{x}" cy="{y}" r="6" fill="{fill}"/>')
        parts.append(f'<text x="{x + 12}" y="{y + 4}" class="legend">{escape(name)}</text>')
    return "".join(parts)


def timeline_svg(records: Sequence[Deployment]) -> Markup:
    """The SVG for ``records`` (the ledger, newest first, as the store returns it). Reads only."""
    shown = list(reversed(records))
    width = max(MARGIN * 2 + STEP * max(len(shown) - 1, 0), MARGIN + 150 * len(LEGEND))
    if not shown:
        body = _text(width / 2, LINE_Y, "nothing has happened here yet", "what")
    else:
        end = MARGIN + STEP * (len(shown) - 1)
        line = f'<line x1="{MARGIN - 20}" y1="{LINE_Y}" x2="{end + 20}" y2="{LINE_Y}"/>'
        body = line + "".join(_dot(index, record) for index, record in enumerate(shown))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}">'
        f"<title>What happened, oldest on the left</title>{body}{_legend(HEIGHT - 14)}</svg>"
    )
    return Markup(svg)
