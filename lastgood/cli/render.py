"""Terminal output: colour and a bake countdown for people, plain lines for pipes, JSON on request.

Data goes to stdout; progress and messages go to stderr. Rich is imported only when a person is
watching a terminal, which keeps scripted commands fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from lastgood.events import Event, EventKind
from lastgood.outcome import Outcome
from lastgood.plaintext import escaped
from lastgood.rows import short_commit

_QUIET_KINDS = {EventKind.CHECK_ROUND}


def is_tty() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def printable(name: str) -> str:
    """A name on one line: one with a newline, another control character or a bidi override
    is quoted and escaped (``'a\\nb.txt'``), so a listing can never be forged or broken by a
    name (see :mod:`lastgood.plaintext`)."""
    return escaped(name)


def out_bytes(data: bytes) -> None:
    """Write ``data`` to stdout exactly as it is: no decoding, no newline added."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def info(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class BakeCountdown:
    """A line that re-renders itself: ``baking v12 on staging · 18 s left · round 4 ok``."""

    def __init__(self, label: str, ends_at: float) -> None:
        self.label = label
        self.ends_at = ends_at
        self.last_round = "waiting for the first round"

    def __rich__(self) -> str:
        left = max(0.0, self.ends_at - time.time())
        return f"baking {self.label} · {left:.0f} s left · {self.last_round}"


_BAKE_OVER = {
    EventKind.BAKE_PASSED,
    EventKind.DEPLOY_FAILED,
    EventKind.DEPLOY_SUCCEEDED,
    EventKind.RESTORE_FAILED,
}


class ProgressPrinter:
    """Event subscriber that shows a deploy or rollback as it happens."""

    def __init__(self) -> None:
        self.tty = is_tty()
        self._console: Any = None
        self._status: Any = None
        self._countdown: BakeCountdown | None = None
        self._bake_end: float | None = None
        if self.tty:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)

    def __call__(self, event: Event) -> None:
        if event.kind in _QUIET_KINDS:
            self._round(event)
            return
        if event.kind in _BAKE_OVER:
            self._stop_countdown()
        self._line(event)
        if event.kind is EventKind.ACTIVATED and "bake" in event.data:
            self._start_countdown(event)

    def _start_countdown(self, event: Event) -> None:
        self._bake_end = float(event.data["activated_at"]) + float(event.data["bake"])
        if self._console is None:
            return
        self._countdown = BakeCountdown(f"v{event.version} on {event.env}", self._bake_end)
        self._status = self._console.status(self._countdown)
        self._status.start()

    def _stop_countdown(self) -> None:
        self._bake_end = None
        if self._status is not None:
            self._status.stop()
            self._status = self._countdown = None

    def _left(self) -> str:
        if self._bake_end is None:
            return ""
        return f" ({max(0.0, self._bake_end - time.time()):.0f} s of bake left)"

    def _line(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        if self._console is not None:
            from rich.markup import escape

            style = _STYLES.get(event.kind, "")
            message = escape(event.message)
            self._console.print(
                f"[dim]{stamp}[/dim] [{style}]{message}[/{style}]"
                if style
                else f"[dim]{stamp}[/dim] {message}"
            )
        else:
            info(f"{stamp} {event.kind.value}: {event.message}")

    def _round(self, event: Event) -> None:
        if not event.data.get("ok", True):
            return  # the check-failed event that follows says it louder
        if self._countdown is not None:
            label = event.data.get("label") or f"round {event.data.get('round')}"
            self._countdown.last_round = f"{label} ok"
            return
        stamp = time.strftime("%H:%M:%S")
        text = f"{event.message}{self._left()}"
        if self._console is not None:
            self._console.print(f"{stamp} {text}", style="dim", markup=False)
        else:
            info(f"{stamp} check-round: {text}")


_STYLES = {
    EventKind.DEPLOY_FAILED: "bold red",
    EventKind.CHECK_FAILED: "red",
    EventKind.RESTORE_FAILED: "bold red",
    EventKind.PREFLIGHT_FAILED: "bold red",
    EventKind.AUTO_ROLLED_BACK: "bold yellow",
    EventKind.ROLLBACK_PERFORMED: "bold green",
    EventKind.DEPLOY_SUCCEEDED: "bold green",
    EventKind.BAKE_PASSED: "green",
    EventKind.LEASE_BROKEN: "yellow",
    EventKind.RECONCILED: "yellow",
    EventKind.GIT_REFS_FAILED: "yellow",
}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns (no Rich), for scripts and small outputs alike. A cell holding a
    control character (a token name or reason from a store older than the checks, a version
    message over two lines) is shown escaped: it can neither break the columns nor rewrite
    what the terminal shows."""
    cells = [[escaped(str(cell)) for cell in row] for row in [headers, *rows]]
    widths = [max(len(cell) for cell in column) for column in zip(*cells, strict=False)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    )


def commit(git_commit: str | None, git_dirty: bool | None, width: int = 10) -> str:
    """A version's git commit, shortened (:func:`lastgood.rows.short_commit`, as the web page
    shows it); ``-`` outside git."""
    return short_commit(git_commit, git_dirty, width) or "-"


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def colour_diff(text: str) -> None:
    """Print a unified diff, coloured on a terminal."""
    if not sys.stdout.isatty() or "NO_COLOR" in os.environ:
        out(text)
        return
    from rich.console import Console

    console = Console(highlight=False)
    for line in text.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        console.print(line, style=style or None, markup=False)


def finish(outcome: Outcome, as_json: bool) -> int:
    """Print what a deploy or rollback did (or would do); return its exit code."""
    if as_json:
        emit_json(outcome.to_json())
    elif outcome.dry_run:
        _print_plan(outcome)
    else:
        out(outcome.summary)
    return outcome.exit_code


def _print_plan(outcome: Outcome) -> None:
    out(outcome.summary)
    for number, step in enumerate(outcome.plan, 1):
        out(f"  {number}. {step.action:<10} {step.detail}")
    for kind, paths in outcome.changes.items():
        for path in paths:
            out(f"     {kind:<8} {path}")
    out("dry run: nothing was changed")
