"""Read ``lastgood.toml`` into typed, validated objects.

Every key is checked here, once: an unknown key, a wrong type or a bad duration stops with a
:class:`ConfigError` that names the key and the file, so nothing later has to second-guess the
configuration. Reads only; writes nothing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastgood.config_notify import NotifySettings, parse_notify
from lastgood.config_tables import inside, reject_unknown, string_list, table_at
from lastgood.errors import ConfigError, UsageError
from lastgood.freezes import ChangeCalendar, parse_calendar
from lastgood.record import Record, field
from lastgood.units import parse_duration, parse_size

if TYPE_CHECKING:
    from lastgood.approval import ApprovalPolicy
    from lastgood.comparison import Comparison
    from lastgood.rollout import RolloutPlan
    from lastgood.secrets.policy import SecretPolicy

CONFIG_NAME = "lastgood.toml"
DEFAULT_TIMEOUT = 10.0

_TOP_KEYS = {
    "versioning",
    "validate",
    "env",
    "default_env",
    "store",
    "watch",
    "notify",
    "groups",
    "secrets",
    "git",
    "agent",
}
_AGENT_KEYS = {"server", "env", "check_every", "name"}
_VERSIONING_KEYS = {"exclude", "max_file_size", "allow"}
_VALIDATE_KEYS = {"schemas"}
_ENV_KEYS = {
    "target",
    "bake",
    "interval",
    "failures",
    "budget",
    "preflight",
    "check",
    "protected",
    "lease",
    "verify_rounds",
    "drill",
    "drill_every",
    "drill_schedule",
    "guard",
    "on_failure",
    "on_drift",
    "approval",
    "freeze",
    "window",
    "rollout",
}
_WATCH_KEYS = {"interval", "stall", "alert_every", "lease", "digest", "digest_period", "document"}
_DOCUMENT_KEYS = {"name", "path", "url", "normalize", "keep", "max_age", "timeout"}
ON_FAILURE = ("alert", "rollback")
ON_DRIFT = ("alert", "restore")
NORMALIZERS = ("text", "json", "html", "bytes")
_DRILL_KEYS = {"files"}
_GIT_KEYS = {"refs"}
CHECK_COMMON_KEYS = frozenset({"name", "type", "timeout", "max_drop", "max_rise"})
"""Keys every check takes, whatever its type (the rest are the type's own options)."""


class CheckSpec(Record):
    """One health check or preflight as written in the config."""

    name: str
    type: str
    timeout: float
    options: dict[str, Any]
    compare: Comparison | None = None
    """``max_drop`` / ``max_rise``: how far the value it measures may move from its baseline
    (see :mod:`lastgood.comparison`); None for a check judged by its own bounds alone."""


class TargetSpec(Record):
    """Where an environment's versions go live; ``options`` are the target type's own keys."""

    type: str
    options: dict[str, Any]


class Environment(Record):
    """A named place where versions go live, with its target, checks and policy."""

    name: str
    target: TargetSpec
    bake: float = 30.0
    interval: float = 3.0
    failures: int = 2
    budget: float = 300.0
    lease: float = 30.0
    verify_rounds: int = 3
    protected: bool = False
    preflight: tuple[CheckSpec, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    drill_files: dict[str, str] = field(default_factory=dict)
    drill_every: float = 30 * 86400.0
    drill_schedule: str | None = None
    guard: float = 1800.0
    on_failure: str = "alert"
    on_drift: str = "alert"
    approval: ApprovalPolicy | None = None
    """``[env.NAME.approval]``: deploys here need an approved change request (None: they do
    not, though requests may still be opened for review)."""
    calendar: ChangeCalendar = field(default_factory=ChangeCalendar)  # freezes and windows
    rollout: RolloutPlan | None = None
    """``[env.NAME.rollout]``: deploys reach a growing share of the consumers step by step (a
    served environment only; see :mod:`lastgood.rollout`)."""

    @property
    def lease_ttl(self) -> float:
        """Lease lifetime: long enough to outlive one check round and its renewal."""
        slowest = max((check.timeout for check in self.checks + self.preflight), default=0.0)
        return max(self.lease, 3 * self.interval + slowest)


class Versioning(Record):
    """Which files of the workspace are versioned."""

    exclude: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    max_file_size: int = 1024 * 1024


class DocumentSpec(Record):
    """A file, folder or URL whose changes matter (``[[watch.document]]``)."""

    name: str
    path: str | None = None
    url: str | None = None
    normalize: str = "text"
    keep: int = 50
    max_age: float = 365 * 86400.0
    timeout: float = DEFAULT_TIMEOUT

    @property
    def source(self) -> str:
        """Where the document is read from, as shown to people."""
        return self.url or self.path or ""


class WatchSettings(Record):
    """How ``lastgood watch`` runs (``[watch]``)."""

    interval: float = 10.0
    stall: float = 120.0
    alert_every: float = 900.0
    lease: float = 60.0
    digest: str | None = None
    digest_period: float = 7 * 86400.0
    documents: tuple[DocumentSpec, ...] = ()


class GitSettings(Record):
    """How lastgood shows itself in the workspace's git repository (``[git]``)."""

    refs: bool = False
    """Move ``refs/lastgood/ENV/live`` and ``refs/lastgood/ENV/last-good`` on every switch."""


class AgentSettings(Record):
    """``[agent]``: what ``lastgood agent -C DIR`` follows (see docs/agents.md)."""

    servers: tuple[str, ...] = ()
    """The lastgood server's URL (a list names several: the agent fails over between them)."""
    env: str | None = None
    check_every: float = 30.0
    """Seconds between runs of the environment's checks on this host."""
    name: str | None = None
    """How the fleet view names this host (default: ``HOST:TARGET-PATH``)."""


class Config(Record):
    """The whole of ``lastgood.toml``."""

    root: Path
    versioning: Versioning = field(default_factory=Versioning)
    schemas: dict[str, str] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    default_env: str | None = None
    store: str | None = None
    watch: WatchSettings = field(default_factory=WatchSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    secrets: SecretPolicy | None = None
    """``[secrets]`` as written; None means the defaults (never: nothing is secret)."""
    git: GitSettings = field(default_factory=GitSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)

    @property
    def path(self) -> Path:
        return self.root / CONFIG_NAME

    def environment(self, name: str) -> Environment:
        """The environment called ``name``, or a ConfigError that lists the known ones."""
        try:
            return self.environments[name]
        except KeyError:
            import difflib

            known = ", ".join(sorted(self.environments)) or "none"
            close = difflib.get_close_matches(name, list(self.environments), n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"no environment named {name!r} in {self.path}",
                hint=f"{guess}known environments: {known}; add an [env.{name}] table to define it",
            ) from None

    def default_environment(self) -> str | None:
        """The environment ``diff`` and ``live`` refer to when none is named."""
        if self.default_env:
            return self.default_env
        if "production" in self.environments:
            return "production"
        return next(iter(self.environments), None)


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding ``lastgood.toml``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return None


def load(root: Path) -> Config:
    """Parse and validate ``root/lastgood.toml``."""
    path = root / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_NAME} in {root}", hint="run 'lastgood init' to create one"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse(data, root)


def parse(data: dict[str, Any], root: Path) -> Config:
    """Build a :class:`Config` from parsed TOML, rejecting anything unknown."""
    where = str(root / CONFIG_NAME)
    reject_unknown(data, _TOP_KEYS, where, "")
    versioning = _parse_versioning(table_at(data, "versioning", where), where)
    validate = table_at(data, "validate", where)
    reject_unknown(validate, _VALIDATE_KEYS, where, "validate.")
    schemas = validate.get("schemas", {})
    if not isinstance(schemas, dict) or not all(isinstance(v, str) for v in schemas.values()):
        raise ConfigError(
            f"validate.schemas in {where} must map file patterns to schema paths",
            hint='write schemas = { "scoring/*.yaml" = "schemas/scoring.schema.json" }',
        )
    groups = _parse_groups(data.get("groups"), where)
    envs = {
        name: _parse_env(name, table, where, root, groups)
        for name, table in table_at(data, "env", where).items()
    }
    _refuse_shared_targets(envs, where, root)
    default_env = data.get("default_env")
    store = data.get("store")
    for key, value in (("default_env", default_env), ("store", store)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r} in {where} must be a string")
    if default_env is not None and default_env not in envs:
        raise ConfigError(f"default_env = {default_env!r} in {where} names no [env.*] table")
    return Config(
        root=root,
        versioning=versioning,
        schemas=dict(schemas),
        environments=envs,
        default_env=default_env,
        store=store,
        watch=_parse_watch(table_at(data, "watch", where), where),
        notify=parse_notify(table_at(data, "notify", where), set(envs), where, root),
        groups=groups,
        secrets=_parse_secrets(data.get("secrets"), where),
        git=_parse_git(table_at(data, "git", where), set(envs), where),
        agent=_parse_agent(table_at(data, "agent", where), set(envs), where),
    )


def _parse_agent(table: dict[str, Any], envs: set[str], where: str) -> AgentSettings:
    reject_unknown(table, _AGENT_KEYS, where, "agent.")
    server = table.get("server", [])
    servers = [server] if isinstance(server, str) else server
    if not isinstance(servers, list) or not all(isinstance(s, str) and s for s in servers):
        raise ConfigError(
            f"agent.server = {server!r} in {where} must be a URL or a list of URLs",
            hint='write server = "https://lastgood.internal:8470"',
        )
    for url in servers:
        from lastgood.address import parse_server_url  # only a workspace with an [agent] table

        try:
            parse_server_url(url, what=f"agent.server in {where}")
        except UsageError as exc:
            raise ConfigError(exc.message, hint=exc.hint) from None
    env, name = table.get("env"), table.get("name")
    if env is not None and env not in envs:
        raise ConfigError(
            f"agent.env = {env!r} in {where} names no [env.*] table",
            hint=f"add [env.{env}] with the target this host puts versions live on",
        )
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise ConfigError(f"agent.name = {name!r} in {where} must be 1 to 200 characters")
    check_every = parse_duration(table.get("check_every", "30s"), name="agent.check_every")
    if check_every <= 0:
        raise ConfigError(f"agent.check_every in {where} must be more than 0")
    return AgentSettings(tuple(servers), env, check_every, name)


def _parse_secrets(table: Any, where: str) -> SecretPolicy | None:
    if table is None:
        return None
    from lastgood.secrets.policy import parse_policy  # only where [secrets] is written

    return parse_policy(table, where)


def _parse_git(table: dict[str, Any], envs: set[str], where: str) -> GitSettings:
    """``[git]``; with ``refs = true``, every environment's name must be usable in a git ref
    (``refs/lastgood/NAME/live``), so the first switch does not find out."""
    reject_unknown(table, _GIT_KEYS, where, "git.")
    refs = table.get("refs", False)
    if not isinstance(refs, bool):
        raise ConfigError(f"git.refs = {refs!r} in {where} must be true or false")
    for name in sorted(envs) if refs else ():
        if name.startswith(".") or ".." in name or name.endswith(".lock"):
            raise ConfigError(
                f"the environment name {name!r} in {where} cannot be part of a git ref "
                f"(refs/lastgood/{name}/live), which [git] refs = true writes",
                hint="git refuses a name part that starts with '.', holds '..' or ends in "
                "'.lock': rename the environment, or set refs = false",
            )
    return GitSettings(refs=refs)


def _parse_versioning(table: dict[str, Any], where: str) -> Versioning:
    reject_unknown(table, _VERSIONING_KEYS, where, "versioning.")
    return Versioning(
        exclude=tuple(string_list(table.get("exclude", []), "versioning.exclude", where)),
        allow=tuple(string_list(table.get("allow", []), "versioning.allow", where)),
        max_file_size=parse_size(
            table.get("max_file_size", "1MiB"), name="versioning.max_file_size"
        ),
    )


def _check_env_name(name: str, where: str) -> None:
    """An environment's name must be writable before the colon of ``ENV:REF``, and not be the
    ``git:`` prefix of a commit reference."""
    from lastgood.refs import ENV_NAME, GIT

    if name == GIT:
        raise ConfigError(
            f"an environment cannot be called {GIT!r} ([env.{GIT}] in {where}): git:REF names "
            "a git commit in every version reference",
            hint="call it by what it serves, e.g. [env.git-hooks] or [env.ci]",
        )
    if not ENV_NAME.match(name):
        raise ConfigError(
            f"the environment name {name!r} in {where} cannot be written in a version reference "
            f"(ENV:REF, like staging:last-good)",
            hint="use only letters, digits, '.', '_' and '-', e.g. "
            f"[env.{_suggest_env_name(name)}]",
        )


def _parse_env(
    name: str, table: Any, where: str, root: Path, groups: dict[str, tuple[str, ...]]
) -> Environment:
    prefix = f"env.{name}."
    _check_env_name(name, where)
    if not isinstance(table, dict):
        raise ConfigError(f"[env.{name}] in {where} must be a table")
    reject_unknown(table, _ENV_KEYS, where, prefix)
    target = _parse_target(table.get("target"), name, where, root)
    failures = table.get("failures", 2)
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        raise ConfigError(f"{prefix}failures = {failures!r} in {where} must be a whole number ≥ 1")
    verify_rounds = table.get("verify_rounds", 3)
    protected = table.get("protected", False)
    if not isinstance(protected, bool):
        raise ConfigError(f"{prefix}protected = {protected!r} in {where} must be true or false")
    if not isinstance(verify_rounds, int) or isinstance(verify_rounds, bool) or verify_rounds < 1:
        raise ConfigError(f"{prefix}verify_rounds = {verify_rounds!r} must be a whole number ≥ 1")
    interval = parse_duration(table.get("interval", "3s"), name=f"{prefix}interval")
    if interval <= 0:
        raise ConfigError(f"{prefix}interval in {where} must be more than 0")
    on_failure = _choice(table, "on_failure", ON_FAILURE, prefix, where)
    on_drift = _choice(table, "on_drift", ON_DRIFT, prefix, where)
    drill_schedule = _cron(table.get("drill_schedule"), f"{prefix}drill_schedule", where)
    bake = parse_duration(table.get("bake", "30s"), name=f"{prefix}bake")
    return Environment(
        name=name,
        target=target,
        bake=bake,
        interval=interval,
        failures=failures,
        budget=parse_duration(table.get("budget", "5m"), name=f"{prefix}budget"),
        lease=parse_duration(table.get("lease", "30s"), name=f"{prefix}lease"),
        verify_rounds=verify_rounds,
        protected=protected,
        preflight=_parse_checks(table.get("preflight", []), f"{prefix}preflight", where),
        checks=_parse_checks(table.get("check", []), f"{prefix}check", where),
        drill_files=_parse_drill(table.get("drill", {}), f"{prefix}drill", where, root),
        drill_every=parse_duration(table.get("drill_every", "30d"), name=f"{prefix}drill_every"),
        drill_schedule=drill_schedule,
        guard=parse_duration(table.get("guard", "30m"), name=f"{prefix}guard"),
        on_failure=on_failure or "alert",
        on_drift=on_drift or "alert",
        approval=_parse_approval(table.get("approval"), groups, prefix, where),
        calendar=parse_calendar(table, prefix, where),
        rollout=_parse_rollout(table.get("rollout"), prefix, where, target.type, bake),
    )


def _check_command_target(options: dict[str, Any], key: str, root: Path) -> None:
    from lastgood.targets.command import check_cwd, parse_options

    check_cwd(parse_options(options, key), key, root)


def _check_http_target(options: dict[str, Any], key: str, root: Path) -> None:
    from lastgood.targets._http_settings import parse_options

    parse_options(options, key)


_TARGET_OPTION_CHECKS = {"command": _check_command_target, "http": _check_http_target}
"""Target types whose options are all known here, so a typo stops every command at once."""


def _parse_target(target: Any, name: str, where: str, root: Path) -> TargetSpec:
    """``[env.NAME] target``: a table with a type; its other keys are the target's options."""
    key = f"env.{name}.target"
    if not isinstance(target, dict) or "type" not in target:
        raise ConfigError(
            f"{key} is missing or has no type in {where}",
            hint=f'add target = {{ type = "directory", path = "../live/{name}" }}',
        )
    options = {k: v for k, v in target.items() if k != "type"}
    _refuse_target_in_workspace(options, key, where, root)
    parse_options = _TARGET_OPTION_CHECKS.get(str(target["type"]))
    if parse_options is not None:  # built from options alone: checked now, every option
        try:
            parse_options(options, key, root)
        except ConfigError as exc:
            raise ConfigError(f"{exc.message} in {where}", hint=exc.hint) from None
    return TargetSpec(type=str(target["type"]), options=options)


def _parse_rollout(
    table: Any, prefix: str, where: str, target: str, bake: float
) -> RolloutPlan | None:
    if table is None:
        return None
    from lastgood.rollout import parse_plan  # only where a rollout is configured

    return parse_plan(table, prefix, where, target=target, bake=bake)


def _parse_groups(table: Any, where: str) -> dict[str, tuple[str, ...]]:
    if table is None:
        return {}
    from lastgood.approval import parse_groups  # only where approvals are configured

    return parse_groups(table, where)


def _parse_approval(
    table: Any, groups: dict[str, tuple[str, ...]], prefix: str, where: str
) -> ApprovalPolicy | None:
    if table is None:
        return None
    from lastgood.approval import parse_policy

    return parse_policy(table, groups, prefix, where)


def _suggest_env_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "staging"


def _choice(
    table: dict[str, Any], key: str, allowed: tuple[str, ...], prefix: str, where: str
) -> str | None:
    value = table.get(key)
    if value is not None and value not in allowed:
        choices = " or ".join(f'"{a}"' for a in allowed)
        raise ConfigError(f"{prefix}{key} = {value!r} in {where} must be {choices}")
    return value


def _cron(value: Any, key: str, where: str) -> str | None:
    """A five-field cron expression, checked now so the watcher never meets a bad one."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} = {value!r} in {where} must be a cron expression string")
    from lastgood import schedule

    try:
        schedule.validate(value)
    except ValueError as exc:
        raise ConfigError(
            f"{key} = {value!r} in {where} is not a valid cron expression: {exc}",
            hint='use five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * MON"',
        ) from None
    return value


def _parse_watch(table: dict[str, Any], where: str) -> WatchSettings:
    reject_unknown(table, _WATCH_KEYS, where, "watch.")
    durations = {
        key: parse_duration(table[key], name=f"watch.{key}")
        for key in ("interval", "stall", "alert_every", "lease", "digest_period")
        if key in table
    }
    for key, value in durations.items():
        if value <= 0:
            raise ConfigError(f"watch.{key} in {where} must be more than 0")
    items = table.get("document", [])
    if not isinstance(items, list):
        raise ConfigError(
            f"watch.document in {where} must be an array of tables ([[watch.document]])"
        )
    documents: list[DocumentSpec] = []
    for index, item in enumerate(items):
        spec = _parse_document(item, index, where)
        if any(d.name == spec.name for d in documents):
            raise ConfigError(f"watch.document: two documents are named {spec.name!r} in {where}")
        documents.append(spec)
    return WatchSettings(
        **durations,
        digest=_cron(table.get("digest"), "watch.digest", where),
        documents=tuple(documents),
    )


def _parse_document(item: Any, index: int, where: str) -> DocumentSpec:
    key = f"watch.document #{index + 1}"
    if not isinstance(item, dict):
        raise ConfigError(f"{key} in {where} must be a table")
    reject_unknown(item, _DOCUMENT_KEYS, where, "watch.document.")
    path, url = item.get("path"), item.get("url")
    if (path is None) == (url is None):
        raise ConfigError(
            f"{key} in {where} needs exactly one of path or url",
            hint='write path = "docs/pricing.md" (a file or folder) or url = "https://…"',
        )
    for option, value in (("path", path), ("url", url)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{key}.{option} in {where} must be a non-empty string")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{key}.url = {url!r} in {where} must start with http:// or https://")
    name = item.get("name") or path or url
    if not isinstance(name, str):
        raise ConfigError(f"{key}.name in {where} must be a string")
    normalize = item.get("normalize", "text")
    if normalize not in NORMALIZERS:
        choices = ", ".join(f'"{n}"' for n in NORMALIZERS)
        raise ConfigError(f"{key}.normalize = {normalize!r} in {where} must be one of {choices}")
    keep = item.get("keep", 50)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ConfigError(f"{key}.keep = {keep!r} in {where} must be a whole number ≥ 1")
    return DocumentSpec(
        name=name,
        path=path,
        url=url,
        normalize=normalize,
        keep=keep,
        max_age=parse_duration(item.get("max_age", "365d"), name=f"{key}.max_age"),
        timeout=parse_duration(item.get("timeout", DEFAULT_TIMEOUT), name=f"{key}.timeout"),
    )


def _refuse_shared_targets(envs: dict[str, Environment], where: str, root: Path) -> None:
    """Two environments switching one folder would overwrite each other's live version."""
    seen: dict[Path, str] = {}
    for name, env in envs.items():
        path = env.target.options.get("path")
        if not isinstance(path, str) or not path:
            continue
        folder = (root / Path(path).expanduser()).resolve()
        if folder in seen:
            raise ConfigError(
                f"env.{seen[folder]}.target and env.{name}.target in {where} both use {folder}: "
                "each would overwrite what the other put live",
                hint="give every environment its own target folder",
            )
        seen[folder] = name


def _refuse_target_in_workspace(options: dict[str, Any], key: str, where: str, root: Path) -> None:
    """A target folder inside the workspace would be versioned by the next snapshot, its own
    releases included: refused, whatever the target type (``path`` and ``state`` options).
    Inside ``.lastgood/`` is fine: that folder is never versioned (the served target's default)."""
    inside = root.resolve()
    private = inside / ".lastgood"
    for option in ("path", "state"):
        value = options.get(option)
        if not isinstance(value, str) or not value:
            continue
        folder = (root / Path(value).expanduser()).resolve()
        if folder.is_relative_to(private):
            continue
        if folder == inside or folder.is_relative_to(inside):
            raise ConfigError(
                f"{key}.{option} = {value!r} in {where} is inside the workspace {root}: the next "
                "snapshot would version the target's own files",
                hint=f'put it outside the workspace, e.g. {option} = "../live/'
                f'{Path(value).name or "target"}"',
            )


def _check_drill_paths(files: dict[str, str], key: str, where: str, root: Path) -> None:
    for live, source in files.items():
        if not inside(root, live) or live.split("/")[0] in (".lastgood", ".git"):
            raise ConfigError(
                f"{key}.files names the live path {live!r} in {where}, which is not inside the "
                "release",
                hint="use the file's path inside the version, as 'lastgood show live' lists it "
                '(e.g. "scoring/thresholds.yaml")',
            )
        if not inside(root, source):
            raise ConfigError(
                f"{key}.files reads {live!r} from {source!r} in {where}, which is outside the "
                f"workspace {root}",
                hint="keep the broken variant's files in the workspace (e.g. drills/…) and "
                'exclude them from versioning: [versioning] exclude = ["drills/**"]',
            )


def _parse_drill(table: Any, key: str, where: str, root: Path) -> dict[str, str]:
    """``[env.NAME.drill] files = { "live/path" = "workspace/file" }``: the broken variant."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{key}] in {where} must be a table")
    reject_unknown(table, _DRILL_KEYS, where, key + ".")
    files = table.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise ConfigError(
            f"{key}.files in {where} must map live file paths to workspace files",
            hint='write files = { "scoring/thresholds.yaml" = "drills/zero-scores.yaml" }',
        )
    _check_drill_paths(files, key, where, root)
    return dict(files)


def _parse_checks(items: Any, key: str, where: str) -> tuple[CheckSpec, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{key} in {where} must be an array of tables ([[{key}]])")
    specs: list[CheckSpec] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "type" not in item:
            raise ConfigError(
                f"{key} #{index + 1} in {where} has no type",
                hint='add type = "http", "command", "sql" or "fleet"',
            )
        name = str(item.get("name") or f"{item['type']}-{index + 1}")
        if any(spec.name == name for spec in specs):
            raise ConfigError(f"{key}: two checks are named {name!r} in {where}")
        timeout = parse_duration(item.get("timeout", DEFAULT_TIMEOUT), name=f"{key}.{name}.timeout")
        if timeout <= 0:
            raise ConfigError(
                f"{key}.{name}.timeout in {where} must be more than 0",
                hint='every check needs time to answer, e.g. timeout = "10s"',
            )
        options = {k: v for k, v in item.items() if k not in CHECK_COMMON_KEYS}
        compare = _parse_compare(item, key, name, where)
        specs.append(
            CheckSpec(name=name, type=str(item["type"]), timeout=timeout, options=options,
                      compare=compare)
        )  # fmt: skip
    return tuple(specs)


def _parse_compare(item: dict[str, Any], key: str, name: str, where: str) -> Comparison | None:
    """``max_drop`` / ``max_rise`` of a check; a preflight has nothing to compare with. The
    comparison module loads only for a config that compares: every command reads this file."""
    if "max_drop" not in item and "max_rise" not in item:
        return None
    from lastgood.comparison import parse_comparison

    compare = parse_comparison(item, f"{key}.{name} in {where}")
    if compare is not None and key.endswith(".preflight"):
        raise ConfigError(
            f"{key}.{name} in {where}: max_drop and max_rise apply to checks, not preflights",
            hint="a preflight runs once against the candidate, before anything is measured "
            "live; move the limit to a [[check]] with the same value",
        )
    return compare
