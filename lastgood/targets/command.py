"""The command target: the universal adapter, configured in ``lastgood.toml`` with no Python.

For configuration that lives in a tool reached over HTTP or a CLI (a workflow tool, a CRM, a
prompt-management service, an internal admin API)::

    [env.production]
    target = { type = "command", timeout = "10s", idempotent = true,
               activate = "tools/push-threshold.sh", live = "tools/live-version.sh" }

- ``activate`` puts a version live; it gets ``LASTGOOD_PATH`` (a folder with the version's files),
  ``LASTGOOD_VERSION`` (``v12``), ``LASTGOOD_RELEASE`` (``v12-3f2a9c1d``), ``LASTGOOD_HASH``
  (the full content hash) and ``LASTGOOD_ENV``.
- ``live`` prints what is live now: the ``LASTGOOD_VERSION`` (or release name, or content hash)
  the tool was given; its last non-empty line counts. Nothing printed: nothing live.
- ``stage`` (optional) runs when a version is first staged on deploy, before anything goes live,
  with the same variables; never on a rollback.
- ``fetch`` (optional) writes the files the tool serves into ``LASTGOOD_PATH`` (over a copy of
  the kept files of the version the tool names), so drift shows a real diff and a value edited
  in the tool is caught under an unchanged label.

A command given as a string runs through ``/bin/sh -c`` in the workspace (or ``cwd``), so
``$VARS`` expand there; a list runs as argv with no shell. Every command runs under ``timeout``
in its own process group. The environment passes through, so secrets are given as variables
(never written into the command); their values are masked in every message. Releases are kept in
``state`` (see :mod:`lastgood.targets.remote`), so a rollback pushes the kept files again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from lastgood.errors import ConfigError, TargetError
from lastgood.record import Record
from lastgood.targets import _fs, _process
from lastgood.targets.base import Release
from lastgood.targets.remote import RemoteTarget, state_folder
from lastgood.units import parse_duration

COMMANDS = ("activate", "live", "stage", "fetch")
OPTIONS = (*COMMANDS, "timeout", "idempotent", "keep", "state", "cwd")
DEFAULT_TIMEOUT = "30s"
_EXAMPLE = 'target = { type = "command", activate = "./push.sh", live = "./live-version.sh" }'


class CommandSettings(Record):
    """The checked options of one ``command`` target."""

    activate: _process.Command
    live: _process.Command
    stage: _process.Command | None
    fetch: _process.Command | None
    timeout: float
    idempotent: bool
    keep: int
    state: str | None
    cwd: str | None


def parse_options(options: Mapping[str, Any], key: str) -> CommandSettings:
    """Check every option of a ``command`` target; ``key`` (``env.prod.target``) names them in
    errors. Called when ``lastgood.toml`` is read, and again when the target is built."""
    import difflib

    for name in options:
        if name not in OPTIONS:
            close = difflib.get_close_matches(name, OPTIONS, n=1)
            hint = f"did you mean {key}.{close[0]}?" if close else f"known: {', '.join(OPTIONS)}"
            raise ConfigError(f"unknown option {key}.{name} of a command target", hint=hint)
    for required in ("activate", "live"):
        if required not in options:
            raise ConfigError(f"{key} has no {required} command", hint=f"write {_EXAMPLE}")
    idempotent = options.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise ConfigError(
            f"{key}.idempotent = {idempotent!r} must be true or false",
            hint="true only when running activate twice with the same version is harmless",
        )
    timeout = parse_duration(options.get("timeout", DEFAULT_TIMEOUT), name=f"{key}.timeout")
    if timeout <= 0:
        raise ConfigError(f"{key}.timeout must be more than 0", hint='write timeout = "30s"')
    return CommandSettings(
        activate=_command(options, "activate", key),
        live=_command(options, "live", key),
        stage=_command(options, "stage", key) if "stage" in options else None,
        fetch=_command(options, "fetch", key) if "fetch" in options else None,
        timeout=timeout,
        idempotent=idempotent,
        keep=_fs.option_keep(options, key),
        state=_text(options, "state", key),
        cwd=_text(options, "cwd", key),
    )


def check_cwd(settings: CommandSettings, key: str, root: Path) -> Path:
    """The folder the commands run in (``cwd`` against the workspace ``root``); ConfigError
    when it is missing or not a folder, so a typo stops every command when the file is read,
    not the first push. Reads only."""
    cwd = _fs.option_path({"cwd": settings.cwd or "."}, "cwd", root) or root
    if not cwd.is_dir():
        why = "is a file, not a folder" if cwd.exists() else "does not exist"
        raise ConfigError(
            f"{key}.cwd = {settings.cwd!r}: {cwd} {why}",
            hint="create that folder, or point cwd at the folder the commands run in (relative "
            "to the workspace; leave it out to run them in the workspace)",
        )
    return cwd


def _command(options: Mapping[str, Any], name: str, key: str) -> _process.Command:
    value = options.get(name)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(arg, str) for arg in value):
        return list(value)
    raise ConfigError(
        f"{key}.{name} = {value!r} must be a command line (run by /bin/sh) or a list of arguments",
        hint=f'write {name} = "./{name}.sh" or {name} = ["python", "tools/{name}.py"]',
    )


def _text(options: Mapping[str, Any], name: str, key: str) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name} = {value!r} must be a folder path")
    return value


class CommandTarget(RemoteTarget):
    """Run the team's own commands to push a version, read back what is live and fetch it."""

    type_name: ClassVar[str] = "command"

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        self.settings = parse_options(options, f"env.{env}.target")
        state = state_folder(env, self.settings.state, root)
        super().__init__(env, options, root, state=state)
        self.idempotent = self.settings.idempotent
        self.keep = self.settings.keep
        self.cwd = _fs.option_path({"cwd": self.settings.cwd or "."}, "cwd", root) or root

    def push(self, release: Release, folder: Path) -> None:
        """Run ``activate`` with the release's files in ``LASTGOOD_PATH``."""
        self._run("activate", self.settings.activate, self._release_env(release, folder))

    def prepare(self, release: Release, folder: Path) -> None:
        """Run ``stage`` (when configured) with the release's files in ``LASTGOOD_PATH``."""
        if self.settings.stage is not None:
            self._run("stage", self.settings.stage, self._release_env(release, folder))

    def read_live(self) -> str:
        """Run ``live`` and return what it printed on stdout."""
        return self._run("live", self.settings.live, {}).stdout

    @property
    def can_fetch(self) -> bool:
        return self.settings.fetch is not None

    def fetch(self, folder: Path) -> None:
        """Run ``fetch`` with ``LASTGOOD_PATH`` = ``folder`` to write what the tool serves."""
        if self.settings.fetch is None:
            super().fetch(folder)
            return
        self._run("fetch", self.settings.fetch, {"LASTGOOD_PATH": str(folder)})

    def _release_env(self, release: Release, folder: Path) -> dict[str, str]:
        return {
            "LASTGOOD_PATH": str(folder),
            "LASTGOOD_VERSION": f"v{release.version}",
            "LASTGOOD_RELEASE": release.name,
            "LASTGOOD_HASH": release.content_hash,
        }

    def _run(self, name: str, command: _process.Command, extra: dict[str, str]) -> _process.Ran:
        """Run one of the commands; a non-zero exit is a TargetError naming it."""
        what = f"the {name} command of {self.env}"
        ran = _process.run(
            command,
            what=what,
            cwd=self.cwd,
            extra_env={"LASTGOOD_ENV": self.env, **extra},
            timeout=self.settings.timeout,
        )
        if ran.code != 0:
            raise TargetError(
                _process.failure(what, command, ran),
                hint=f"fix the tool or target.{name} in lastgood.toml, then run the command again",
            )
        return ran

    def describe(self) -> str:
        shown = _process.display(self.settings.activate)
        return f"command {shown if len(shown) <= 60 else shown[:57] + '...'}"
