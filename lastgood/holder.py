"""Who is acting: the process identity written into leases, and the author of a change."""

from __future__ import annotations

import os
from pathlib import Path

from lastgood import settings


def hostname() -> str:
    """This machine's name, as leases record it (``os.uname`` is cheaper than socket)."""
    return os.uname().nodename


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` ("" when unknown): tells a live pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def is_alive(host: str, pid: int, pid_start: str) -> bool | None:
    """Whether a lease's process still runs; None when it cannot be told (other host)."""
    if host != hostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not pid_start or process_start(pid) in ("", pid_start)


def author(explicit: str | None = None) -> str:
    """``--author``, then ``LASTGOOD_AUTHOR``, then git's user.name, then the OS user."""
    if explicit:
        return explicit
    configured = settings.AUTHOR.read()
    if configured:
        return configured
    import subprocess

    try:
        name = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=2
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
