"""What every command shares, without click: the workspace context and error translation.

Kept free of click so the rollback fast lane (:mod:`lastgood.cli.fast`) can use it too.
Errors are translated in one place, :func:`guarded`: a :class:`LastgoodError` prints its message
and hint and returns its exit code; anything else prints one line (a traceback only with
``LASTGOOD_DEBUG=1``) and returns 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from lastgood import holder, settings
from lastgood.config import find_root
from lastgood.errors import ConfigError, LastgoodError
from lastgood.project import Project


class AppContext:
    """What every command gets: where the workspace is and how to open the project."""

    def __init__(self, workspace: str | None, store: str | None, author: str | None) -> None:
        self.workspace = workspace
        self.store = store
        self.author = author
        self._project: Project | None = None

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
        if self._project is None:
            self._project = Project.open(
                self.root(), store_url=self.store, actor=holder.author(self.author)
            )
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


def guarded(run: Callable[[], int]) -> int:
    """Run a command; translate lastgood's errors and surprises into messages and exit codes."""
    try:
        return run()
    except LastgoodError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
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
