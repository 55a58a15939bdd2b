"""The host workspace: what an agent follows, and where, in a ``lastgood.toml`` on the host.

``lastgood agent --target directory:/srv/app/config`` writes ``STATE/lastgood.toml`` naming the
environment and its target the first time (``STATE`` is ``--state``, by default
:func:`default_state`), so that ``lastgood -C STATE rollback ENV --offline`` works on the host
with the server away, and so that host-local checks can be added there as ``[[env.ENV.check]]``
tables. ``lastgood agent -C DIR`` reads an existing workspace's ``[agent]`` table instead.

Every value from the command line is checked before anything is written, so a typo never lands
in the file; ``--server`` overrides ``[agent] server`` and, when it differs, rewrites that one
line (so the file never keeps a server the command line corrected).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tomllib
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
WHERE_HINT = (
    "pass --target directory:/srv/app/config (or files:PATH), or -C DIR: a folder whose "
    "lastgood.toml has an [agent] table"
)


class AgentPlan(Record):
    """Everything an agent needs, resolved from the command line and the host workspace."""

    root: Path
    config: Config
    env: str
    servers: tuple[str, ...]
    name: str
    consumer_id: str
    check_every: float
    target_where: str = "--target"  # where the target's path was given, for hints

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
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--target {text!r}: {folder} is a file, not a folder",
                         hint=f"{kind}:PATH names the folder versions go live in")  # fmt: skip
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
        if _target_in(path, env) != target:
            raise UsageError(
                f"{path} is the host workspace of another environment or target, not {env} "
                f"on {target['type']} {target['path']}",
                hint="pass another --state DIR, or edit that file's [env.*] table to match",
            )
        return
    _write(path, hostspace_text(env, servers, target).encode())


def _target_in(path: Path, env: str) -> Any:
    """The raw ``[env.ENV] target`` table of ``path`` (read as plain TOML, so that a value the
    next start corrects, like a bad server, does not stop the comparison); None if none."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the host workspace {path}: {exc}",
                          hint="fix that file, or pass another --state DIR") from exc  # fmt: skip
    table = data.get("env", {}).get(env, {})
    return table.get("target") if isinstance(table, dict) else None


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
    """Resolve the request against the host workspace, writing it first for ``--target``
    (every value checked before anything is written). Raises UsageError or ConfigError naming
    what is missing or wrong, and where it came from."""
    for url in request.servers:
        parse_server_url(url, what="--server")
    if request.target is not None:
        root = _write_for_target(request)
    elif request.root is None:
        raise UsageError(
            "no host workspace: which target should this agent put versions on?", hint=WHERE_HINT
        )
    else:
        root = request.root
        if not (root / CONFIG_NAME).is_file():
            raise UsageError(
                f"{root} is not a host workspace: it has no {CONFIG_NAME}", hint=WHERE_HINT
            )
        if request.servers:
            update_server(root / CONFIG_NAME, request.servers)
    config = config_module.load(root)
    env = _env_of(request.env or config.agent.env, config)
    servers = _servers_of(request, config, env)
    name = request.name or config.agent.name or default_name(env, config)
    where = "--target" if request.target is not None else f"target.path in {config.path}"
    return AgentPlan(root=root, config=config, env=env, servers=servers, name=name,
                     consumer_id=consumer_id_of(name, env, config),
                     check_every=request.check_every or config.agent.check_every,
                     target_where=where)  # fmt: skip


def _write_for_target(request: AgentRequest) -> Path:
    """Check ``--env``, ``--server`` and ``--target``, then write (or update) the host
    workspace; its folder."""
    if not request.env:
        raise UsageError("--target needs --env ENV: the environment to follow",
                         hint="lastgood agent --server URL --env production "
                         "--target directory:/srv/app/config")  # fmt: skip
    if not request.servers and not request.fallback:
        raise UsageError("--target needs --server URL: the lastgood server to follow",
                         hint="pass --server http://HOST:8470, or set LASTGOOD_SERVER")  # fmt: skip
    if not request.servers:
        parse_server_url(str(request.fallback), what="LASTGOOD_SERVER")
    table = parse_target(request.target or "", request.keep)
    _check_new_target(request.env, table)
    root = (request.state or default_state(request.env)).expanduser().resolve()
    listed = request.servers or (str(request.fallback),)
    write_hostspace(root, request.env, listed, table)
    if request.servers:
        update_server(root / CONFIG_NAME, request.servers)
    return root


def _check_new_target(env: str, table: dict[str, Any]) -> None:
    """Refuse, before anything is written, a ``--target`` no version could ever go live on."""
    from lastgood.agent.guard import check_target
    from lastgood.targets.registry import open_target

    options = {key: value for key, value in table.items() if key != "type"}
    target = open_target(env, TargetSpec(type=table["type"], options=options), Path.cwd())
    check_target(target, "--target")


def _servers_of(request: AgentRequest, config: Config, env: str) -> tuple[str, ...]:
    """``--server``, else ``[agent] server``, else ``LASTGOOD_SERVER``; each checked."""
    servers = request.servers or config.agent.servers
    what = "--server" if request.servers else f"agent.server in {config.path}"
    if not servers and request.fallback:
        servers, what = (request.fallback,), "LASTGOOD_SERVER"
    if not servers:
        raise UsageError(
            f"no server to follow for {env}",
            hint=f'pass --server URL, or write server = "URL" under [agent] in {config.path}',
        )
    for url in servers:
        parse_server_url(url, what=what)
    return tuple(servers)


def default_name(env: str, config: Config) -> str:
    """``HOST:TARGET-PATH``: two agents on one host (two targets) tell themselves apart."""
    path = config.environments[env].target.options.get("path", env)
    return f"{socket.gethostname()}:{path}"[:200]


def update_server(path: Path, servers: Sequence[str]) -> None:
    """Rewrite ``server = …`` under ``[agent]`` in ``path`` when ``--server`` says otherwise,
    so the file never keeps a server the command line corrected. Only that line changes
    (checks someone added stay); a file without an ``[agent]`` table is left alone."""
    lines = path.read_text().splitlines(keepends=True)
    listed = json.dumps(servers[0]) if len(servers) == 1 else json.dumps(list(servers))
    wanted = f"server = {listed}\n"
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "[agent]")
    except StopIteration:
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))  # fmt: skip
    found = [i for i in range(start + 1, end) if lines[i].split("=")[0].strip() == "server"]
    if found and lines[found[0]] == wanted:
        return
    if found and lines[found[0]].count("[") != lines[found[0]].count("]"):
        raise UsageError(f"--server differs from the server list in {path}, written over "
                         "several lines", hint="edit that [agent] server by hand")  # fmt: skip
    if found:
        lines[found[0]] = wanted
    else:
        lines.insert(start + 1, wanted)
    _write(path, "".join(lines).encode())


def _write(path: Path, data: bytes) -> None:
    from lastgood.targets._fs import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the host workspace {path}: {exc.strerror}",
            hint="pass --state DIR with a folder this user may write",
        ) from exc


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
