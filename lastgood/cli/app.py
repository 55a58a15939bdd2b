"""What every command shares, without click: the workspace context and error translation.

Kept free of click (and httpx) so the rollback fast lane (:mod:`lastgood.cli.fast`) can use it
too. With ``--server`` (or ``LASTGOOD_SERVER``) the commands that can act through a server do so
through :meth:`AppContext.remote`; the others stop at :meth:`AppContext.project`, so nothing ever
acts on a local store while the user asked for a server.
Errors are translated in one place, :func:`guarded`: a :class:`LastgoodError` prints its message
and hint and returns its exit code; anything else prints one line (a traceback only with
``LASTGOOD_DEBUG=1``) and returns 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood import holder, settings
from lastgood.config import CONFIG_NAME, find_root
from lastgood.errors import ConfigError, LastgoodError, UsageError
from lastgood.events import Event, EventKind
from lastgood.project import Project
from lastgood.termination import Terminated, forget, on_sigterm, unraisable

if TYPE_CHECKING:
    from lastgood.cli.remote import Remote


class AppContext:
    """What every command gets: where the workspace is and how to open the project, or the
    server to act through (``server`` and ``token`` as the click group resolved them from the
    options and the environment; ``command`` the name of the command being run)."""

    def __init__(
        self,
        workspace: str | None,
        store: str | None,
        author: str | None,
        *,
        server: str | None = None,
        token: str | None = None,
        command: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.author = author
        self.server = server
        self.token = token
        self.command = command
        self._project: Project | None = None
        self._remote: Remote | None = None

    def root(self) -> Path:
        explicit = self.workspace or settings.WORKSPACE.read()
        if explicit:
            return Path(explicit).resolve()
        found = find_root(Path.cwd())
        if found is None:
            raise ConfigError(
                f"no lastgood.toml in {Path.cwd()} or any folder above it",
                hint="run 'lastgood init' here, or pass -C DIR",
            )
        return found

    def project(self) -> Project:
        """The project on the local store; refused while a server is set, so that a command
        that cannot act through a server never quietly acts on a store instead."""
        self.require_store()
        if self._project is None:
            root = self.root()
            if not (self.store or settings.STORE.read()):
                _refuse_host_workspace(root)
            self._project = Project.open(
                root, store_url=self.store, actor=holder.author(self.author)
            )
            self._project.events.subscribe(warn_of_suspects)
        return self._project

    def reopen(self) -> None:
        """Close the project, so that the next :meth:`project` opens it anew: each worker of
        ``serve --workers`` forked after this opens its own store connections."""
        if self._project is not None:
            self._project.close()
            self._project = None

    def remote(self) -> Remote:
        """The server to act through (only when ``server`` is set)."""
        if self._remote is None:
            from lastgood.cli.remote import Remote

            assert self.server is not None
            self._remote = Remote(self.server, self.token)
        return self._remote

    def require_store(self) -> None:
        """Refuse when a server is set: the command at hand needs the store itself."""
        if self.server:
            name = f"'lastgood {self.command}'" if self.command else "this command"
            raise UsageError(
                f"{name} works on a store only, not through a server "
                f"({settings.mask_url(self.server)})",
                hint="drop --server (and unset LASTGOOD_SERVER) to run it where the store is",
            )

    def close(self) -> None:
        if self._project is not None:
            self._project.close()
        if self._remote is not None:
            self._remote.close()


def _refuse_host_workspace(root: Path) -> None:
    """A host workspace (``lastgood.toml`` with an ``[agent]`` table, as ``lastgood agent``
    writes it) has no store: the versions live on the server. A command that needs the store
    there would make an empty one and fail oddly ("no version v12"), so it is refused."""
    import tomllib

    try:
        data = tomllib.loads((root / CONFIG_NAME).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # Project.open reports what is wrong with the file
    agent = data.get("agent")
    if not isinstance(agent, dict):
        return
    env = agent.get("env") if isinstance(agent.get("env"), str) else "ENV"
    raise UsageError(
        f"{root} is lastgood agent's host workspace: it has no store (the versions are on the "
        "server)",
        hint=f"use 'lastgood -C {root} rollback {env} --offline' here, or act on the server "
        "(--server URL)",
    )


def warn_of_suspects(event: Event) -> None:
    """Print on stderr what a new version holds that looks like a live credential outside a
    marked key (``snapshot``, and ``deploy`` and ``request``, which snapshot the folder)."""
    suspected = event.data.get("suspected") if event.kind is EventKind.SNAPSHOT_CREATED else None
    if not suspected:
        return
    from lastgood.secrets.scan import Suspect, warning

    for item in suspected:
        sys.stderr.write(warning(Suspect(**item)) + "\n")


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """While a command runs, SIGTERM unwinds it like Ctrl-C; commands with their own handler
    (``serve``, ``watch``) install it over this one."""
    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (a test runner): leave signals alone
        yield
        return
    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook
        forget()


def guarded(run: Callable[[], int]) -> int:
    """Run a command; translate lastgood's errors and surprises into messages and exit codes."""
    try:
        with _sigterm_as_exception():
            return run()
    except LastgoodError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except Terminated:
        sys.stderr.write("terminated\n")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # the last line of defence: one sentence, never a traceback
        if os.environ.get("LASTGOOD_DEBUG"):
            raise
        sys.stderr.write(
            f"unexpected error: {type(exc).__name__}: {exc}\n"
            "  hint: run again with LASTGOOD_DEBUG=1 for details, and report it\n"
        )
        return 1
