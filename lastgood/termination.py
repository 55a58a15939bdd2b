"""SIGTERM as an exception that unwinds the command, and that cannot be lost.

The handler raises :class:`Terminated` where the command stands, so its ``finally`` blocks and
ledger guards run (a deploy stopped by ``kill`` closes its record and frees its lease). Python
runs a signal handler between two bytecodes of the main thread, whatever code that is: when it
is a garbage-collector callback (SQLAlchemy registers some while a new store is migrated), the
exception is printed as "ignored" and the command would carry on as if nothing happened. So the
handler also remembers the signal, and the long waits of a command (a bake's pauses between
rounds) call :func:`raise_if_terminated`, which raises it again; :func:`unraisable` keeps
Python from printing the swallowed one as a traceback.

A server runs operations in threads, where no signal handler raises: when it stops it calls
:func:`request_stop`, and a deploy or a rollout waiting between two rounds (:func:`pause`)
wakes at once and unwinds as a CLI deploy does on SIGTERM (its record closed, a rollout ended
with everyone back on the stable version).
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command stands."""


_requested = False
_stop = threading.Event()  # set with _requested: wakes every pause at once


def on_sigterm(signum: int, frame: object) -> None:
    """The SIGTERM handler a command installs while it runs."""
    global _requested
    _requested = True
    _stop.set()
    raise Terminated()


def request_stop() -> None:
    """Ask every operation of this process to stop at its next pause (from any thread): the
    server stopping."""
    global _requested
    _requested = True
    _stop.set()


def pause(seconds: float) -> None:
    """Wait ``seconds`` between two rounds, or less: Terminated as soon as a stop is asked."""
    raise_if_terminated()
    if seconds > 0:
        _stop.wait(seconds)
    raise_if_terminated()


def raise_if_terminated() -> None:
    """Raise Terminated again when a SIGTERM arrived and its first raise was swallowed."""
    if _requested:
        raise Terminated()


def forget() -> None:
    """The command is over (or the handler is being removed): no SIGTERM is pending."""
    global _requested
    _requested = False
    _stop.clear()


def unraisable(report: Any) -> None:
    """``sys.unraisablehook`` while a command runs: a Terminated swallowed by a callback is
    pending, not an error to print; anything else goes to Python's own hook."""
    if isinstance(report.exc_value, Terminated):
        return
    sys.__unraisablehook__(report)
