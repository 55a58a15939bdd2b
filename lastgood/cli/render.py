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

_QUIET_KINDS = {EventKind.CHECK_ROUND}


def is_tty() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def info(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class ProgressPrinter:
    """Event subscriber that shows a deploy or rollback as it happens."""

    def __init__(self) -> None:
        self.tty = is_tty()
        self._console: Any = None
        if self.tty:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)

    def __call__(self, event: Event) -> None:
        if event.kind in _QUIET_KINDS:
            self._round(event)
            return
        stamp = time.strftime("%H:%M:%S")
        if self._console is not None:
            style = _STYLES.get(event.kind, "")
            self._console.print(
                f"[dim]{stamp}[/dim] [{style}]{event.message}[/{style}]"
                if style
                else f"[dim]{stamp}[/dim] {event.message}"
            )
        else:
            info(f"{stamp} {event.kind.value}: {event.message}")

    def _round(self, event: Event) -> None:
        if not event.data.get("ok", True):
            return  # the check-failed event that follows says it louder
        stamp = time.strftime("%H:%M:%S")
        text = f"{event.message}"
        if self._console is not None:
            self._console.print(f"[dim]{stamp} {text}[/dim]")
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
}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns (no Rich), for scripts and small outputs alike."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=False)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


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
