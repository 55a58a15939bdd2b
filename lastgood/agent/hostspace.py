"""The host workspace: what an agent follows, and where, in a ``lastgood.toml`` on the host.

``lastgood agent --target directory:/srv/app/config`` writes ``STATE/lastgood.toml`` naming the
environment and its target the first time (``STATE`` is ``--state``, by default
:func:`default_state`), so that ``lastgood -C STATE rollback ENV --offline`` works on the host
with the server away, and so that host-local checks can be added there as ``[[env.ENV.check]]``
tables. ``lastgood agent -C DIR`` reads an existing workspace's ``[agent]`` table instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lastgood import config as config_module
from lastgood.address import parse_server_url
from lastgood.config import CONFIG_NAME, Config, TargetSpec
from lastgood.errors import ConfigError, UsageError
from lastgood.record import Record

HOST_TARGETS = ("directory", "files")
TARGET_HINT = "write --target directory:/srv/app/config (or files:/srv/app/config)"


class AgentPlan(Record):
    """Everything an agent needs, resolved from the command line and the host workspace."""

    root: Path
    config: Config
    env: str
    servers: tuple[str, ...]
    name: str
    consumer_id: str
    check_every: float

    @property
    def server(self) -> str:
        return self.servers[0]


def parse_target(text: str, keep: int | None = None) -> dict[str, Any]:
    """``directory:/srv/app/config`` → the target table; UsageError (exit 2) when malformed.
    A relative path is taken from the current folder and written down absolute."""
    kind, colon, path = text.partition(":")
    if not colon or not path.strip():
        raise UsageError(f"--target {text!r} is not TYPE:PATH", hint=TARGET_HINT)
    if kind not in HOST_TARGETS:
        raise UsageError(
            f"--target {text!r}: an agent puts versions live on a "
            f"{' or '.join(HOST_TARGETS)} target, not {kind!r}",
            hint=TARGET_HINT,
        )
    folder = (Path.cwd() / Path(path).expanduser()).resolve()
    table: dict[str, Any] = {"type": kind, "path": str(folder)}
    if keep is not None:
        table["keep"] = keep
    return table


def default_state(env: str) -> Path:
    """Where the host workspace of ``env`` lives without ``--state``: under systemd's
    ``$STATE_DIRECTORY`` (``StateDirectory=lastgood-agent``), else ``/var/lib/lastgood-agent``
    for root, else ``$XDG_STATE_HOME/lastgood-agent`` (``~/.local/state/lastgood-agent``)."""
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        base = Path(systemd)
    elif os.geteuid() == 0:
        base = Path("/var/lib/lastgood-agent")
    else:
        xdg = os.environ.get("XDG_STATE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".local" / "state") / "lastgood-agent"
    return base / env


def hostspace_text(env: str, servers: Sequence[str], target: dict[str, Any]) -> str:
    """The ``lastgood.toml`` an agent writes (TOML basic strings are JSON strings)."""
    options = ", ".join(f"{key} = {json.dumps(value)}" for key, value in target.items())
    listed = json.dumps(servers[0]) if len(servers) == 1 else json.dumps(list(servers))
    return (
        "# Written by 'lastgood agent' for this host: the environment it follows and where it\n"
        "# puts versions live. 'lastgood -C THIS-FOLDER rollback ENV --offline' works here with\n"
        f"# the server away. Add host-local checks as [[env.{env}.check]] tables.\n\n"
        f"[agent]\nserver = {listed}\nenv = {json.dumps(env)}\n\n"
        f"[env.{env}]\ntarget = {{ {options} }}\n"
    )


def write_hostspace(state: Path, env: str, servers: Sequence[str], target: dict[str, Any]) -> None:
    """Write ``state/lastgood.toml`` unless it is there; refuse one written for another
    environment or target (it may hold checks someone added: it is never overwritten)."""
    path = state / CONFIG_NAME
    if path.is_file():
        existing = config_module.load(state).environments.get(env)
        wanted = TargetSpec(type=target["type"], options={k: v for k, v in target.items()
                                                          if k != "type"})  # fmt: skip
        if existing is None or existing.target != wanted:
            raise UsageError(
                f"{path} is the host workspace of another environment or target, not {env} "
                f"on {target['type']} {target['path']}",
                hint="pass another --state DIR, or edit that file's [env.*] table to match",
            )
        return
    from lastgood.targets._fs import write_atomic

    try:
        state.mkdir(parents=True, exist_ok=True)
        write_atomic(path, hostspace_text(env, servers, target).encode())
    except OSError as exc:
        raise ConfigError(
            f"cannot write the host workspace {path}: {exc.strerror}",
            hint="pass --state DIR with a folder this user may write",
        ) from exc


def consumer_id_of(name: str, env: str, config: Config) -> str:
    """A stable id per host, environment and target: a restarted agent is the same consumer,
    so the fleet never counts its old self as one more host behind."""
    target = config.environments[env].target
    seed = json.dumps([socket.gethostname(), name, env, target.type, target.options],
                      sort_keys=True, default=str)  # fmt: skip
    return "agent-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


class AgentRequest(Record):
    """What the command line asked for; every field may be left to the host workspace."""

    root: Path | None = None  # -C DIR (or the nearest lastgood.toml) when there is no target
    target: str | None = None
    state: Path | None = None
    env: str | None = None
    servers: tuple[str, ...] = ()
    fallback: str | None = None  # LASTGOOD_SERVER: after --server and [agent] server
    name: str | None = None
    check_every: float | None = None
    keep: int | None = None


def plan_agent(request: AgentRequest) -> AgentPlan:
    """Resolve the request against the host workspace, writing it first for ``--target``.
    Raises UsageError or ConfigError naming what is missing or wrong."""
    if request.target is not None:
        if not request.env:
            raise UsageError("--target needs --env ENV: the environment to follow",
                             hint="lastgood agent --server URL --env production "
                             "--target directory:/srv/app/config")  # fmt: skip
        if not request.servers and not request.fallback:
            raise UsageError("--target needs --server URL: the lastgood server to follow")
        table = parse_target(request.target, request.keep)
        root = (request.state or default_state(request.env)).expanduser().resolve()
        listed = request.servers or (str(request.fallback),)
        write_hostspace(root, request.env, listed, table)
    elif request.root is None:
        raise UsageError("no host workspace", hint=f"pass --target ({TARGET_HINT}) or -C DIR")
    else:
        root = request.root
    config = config_module.load(root)
    env = _env_of(request.env or config.agent.env, config)
    servers = request.servers or config.agent.servers
    if not servers and request.fallback:
        servers = (request.fallback,)
    if not servers:
        raise UsageError(
            f"no server to follow for {env}",
            hint=f'pass --server URL, or write server = "URL" under [agent] in {config.path}',
        )
    for url in servers:
        parse_server_url(url, what="--server")
    name = request.name or config.agent.name or socket.gethostname()
    return AgentPlan(root=root, config=config, env=env, servers=tuple(servers), name=name,
                     consumer_id=consumer_id_of(name, env, config),
                     check_every=request.check_every or config.agent.check_every)  # fmt: skip


def _env_of(env: str | None, config: Config) -> str:
    """The environment to follow: named, or the workspace's only one; its target a host's."""
    if env is None:
        if len(config.environments) != 1:
            raise UsageError(
                f"which environment should this agent follow? {config.path} has "
                f"{len(config.environments)}",
                hint='pass --env ENV, or write env = "ENV" under [agent]',
            )
        env = next(iter(config.environments))
    target = config.environment(env).target
    if target.type == "served":
        raise ConfigError(
            f"env.{env}.target in {config.path} is the served target: an agent puts versions "
            "live on this host, so it needs a directory or files target",
            hint=f'write target = {{ type = "directory", path = "/srv/app/{env}" }}',
        )
    return env
