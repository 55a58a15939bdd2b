"""Who must approve a change: ``[groups]``, ``[env.NAME.approval]`` and its rules, routing a
change to them, and counting the approvals a request has.

Pure logic on records: the configuration is read here (every key checked once, like
:mod:`lastgood.config`), and :func:`route` and :func:`tally` decide from a request's changes
and its timeline. The verbs in :mod:`lastgood.operations.requests` do the reading and writing.

An approval covers exact content: it names the content hash of the proposed version and of the
version it was based on, and counts only while the request holds both. A person counts once per
requirement, whatever groups they are in; one approval can meet several requirements (the way a
code owner's review covers every file they own).
"""

from __future__ import annotations

from typing import Any

from lastgood.errors import ConfigError
from lastgood.globs import matches
from lastgood.record import Record
from lastgood.units import parse_duration

RISKS = ("low", "medium", "high")
APPLY_MODES = ("manual", "on-approval")
_APPROVAL_KEYS = {"approvers", "required", "self_approval", "expire", "apply", "rule", "remind",
                  "emergency", "emergency_approvals", "approve_via"}  # fmt: skip
_RULE_KEYS = {"name", "paths", "risk", "min_files", "max_files", "max_lines", "approvers",
              "required", "standard"}  # fmt: skip
ANYONE = "anyone"
"""What a requirement with no approvers listed accepts: anyone but the requester."""


class Rule(Record):
    """One routing rule: when it matches a change, and what it then needs.

    A *standard* rule marks pre-approved changes: when it covers the whole change (every
    changed path matches its ``paths`` and the change is within its limits) and no other rule
    matches, the change needs no approval and the rule is recorded as the reason."""

    name: str
    paths: tuple[str, ...] = ()
    risk: str | None = None
    min_files: int | None = None
    max_files: int | None = None
    max_lines: int | None = None
    approvers: tuple[str, ...] = ()
    required: int = 1
    standard: bool = False


class ApprovalPolicy(Record):
    """``[env.NAME.approval]``: an environment whose deploys need an approved change request."""

    approvers: tuple[str, ...] = ()
    required: int = 1
    self_approval: bool = False
    expire: float = 30 * 86400.0
    apply: str = "manual"
    rules: tuple[Rule, ...] = ()
    remind: float | None = None
    """Remind the approvers of a request still waiting after this long (and again each time)."""
    emergency: bool = True
    """Whether ``--emergency`` may apply a request at once, past approvals and freezes."""
    emergency_approvals: int = 0
    """How many of the routed approvers an emergency still needs (0: none)."""
    approve_via: str = "anywhere"
    """``server``: approvals (and sign-offs) count only through the server, where an API
    token proves who approves; locally a name is only claimed."""


OPTIONAL_REVIEW = ApprovalPolicy()
"""What a request to an environment without ``[env.NAME.approval]`` is routed by: one approval
from anyone but the requester. Such an environment still takes plain deploys."""


class Change(Record):
    """What a request changes, as routing sees it."""

    paths: tuple[str, ...]
    lines: int
    removed: int

    @property
    def risk(self) -> str:
        """``high`` for a removed file, 10 files or 200 changed lines; ``medium`` from 3 files
        or 20 lines; ``low`` below."""
        files = len(self.paths)
        if self.removed or files >= 10 or self.lines >= 200:
            return "high"
        return "medium" if files >= 3 or self.lines >= 20 else "low"


class Requirement(Record):
    """Approvals a request needs because a rule matched: ``required`` people out of
    ``approvers`` (people and groups; empty means anyone but the requester)."""

    rule: str
    approvers: tuple[str, ...]
    required: int

    def describe(self) -> str:
        who = " or ".join(self.approvers) if self.approvers else "anyone but the requester"
        approvals = "approval" if self.required == 1 else "approvals"
        return f"{self.required} {approvals} from {who} ({self.rule})"


class Routing(Record):
    """How a request was routed: its risk, the rules that matched and what they need."""

    risk: str
    files: int
    lines: int
    requirements: tuple[Requirement, ...] = ()
    standard: str | None = None

    @property
    def needs_approval(self) -> bool:
        return any(requirement.required > 0 for requirement in self.requirements)

    def to_json(self) -> dict[str, Any]:
        return {
            "risk": self.risk,
            "files": self.files,
            "lines": self.lines,
            "standard": self.standard,
            "requirements": [
                {"rule": r.rule, "approvers": list(r.approvers), "required": r.required}
                for r in self.requirements
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Routing:
        return cls(
            risk=str(data.get("risk", "low")),
            files=int(data.get("files", 0)),
            lines=int(data.get("lines", 0)),
            standard=data.get("standard"),
            requirements=tuple(
                Requirement(str(r["rule"]), tuple(r["approvers"]), int(r["required"]))
                for r in data.get("requirements", [])
            ),
        )


class Vote(Record):
    """One person's latest word on the content a request holds now."""

    person: str
    verdict: str  # approved or rejected
    comment: str
    at: float


class Tally(Record):
    """Where a request's review stands for the content it holds now."""

    approved: bool
    rejected_by: tuple[str, ...] = ()
    approved_by: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    dismissed: int = 0
    """Approvals given to other content than the request holds now: they do not count."""

    @property
    def state(self) -> str:
        if self.rejected_by:
            return "rejected"
        return "approved" if self.approved else "waiting"


# ---- reading the configuration ----------------------------------------------------------------


def parse_groups(table: Any, where: str) -> dict[str, tuple[str, ...]]:
    """``[groups]``: group name → its people."""
    if not isinstance(table, dict):
        raise ConfigError(f"[groups] in {where} must be a table of name = [people]")
    groups: dict[str, tuple[str, ...]] = {}
    for name, people in table.items():
        if not isinstance(people, list) or not all(
            isinstance(p, str) and p.strip() for p in people
        ):
            raise ConfigError(
                f"groups.{name} in {where} must be a list of people's names",
                hint=f'write {name} = ["dana", "lee"] (the names people deploy and approve as)',
            )
        if not people:
            raise ConfigError(
                f"groups.{name} in {where} is empty: a request routed to it could never be "
                "approved",
                hint=f'name its people, e.g. {name} = ["dana", "lee"], or remove it',
            )
        groups[name] = tuple(p.strip() for p in people)
    return groups


def parse_policy(
    table: Any, groups: dict[str, tuple[str, ...]], prefix: str, where: str
) -> ApprovalPolicy:
    """``[env.NAME.approval]`` and its ``[[env.NAME.approval.rule]]`` entries."""
    key = f"{prefix}approval"
    if not isinstance(table, dict):
        raise ConfigError(f"{key} in {where} must be a table ([{key}])")
    unknown = sorted(set(table) - _APPROVAL_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {key}.{unknown[0]} in {where}",
            hint=f"known keys: {', '.join(sorted(_APPROVAL_KEYS))}",
        )
    approvers = _approvers(table.get("approvers", []), groups, f"{key}.approvers", where)
    required = _count(table.get("required", 1), f"{key}.required", where)
    _satisfiable(approvers, required, groups, key, where)
    remind = table.get("remind")
    return ApprovalPolicy(
        approvers=approvers,
        required=required,
        self_approval=_flag(table, "self_approval", False, key, where),
        expire=_positive_duration(table.get("expire", "30d"), f"{key}.expire", where),
        apply=_choice(table, "apply", APPLY_MODES, key, where),
        rules=_parse_rules(table.get("rule", []), groups, key, where),
        remind=None if remind is None else _positive_duration(remind, f"{key}.remind", where),
        emergency=_flag(table, "emergency", True, key, where),
        emergency_approvals=_count(
            table.get("emergency_approvals", 0), f"{key}.emergency_approvals", where
        ),
        approve_via=_choice(table, "approve_via", ("anywhere", "server"), key, where),
    )


_HINTS = {
    "apply": '"on-approval" applies a request as soon as its last approval arrives',
    "emergency": "false refuses 'lastgood request --emergency' on this environment",
    "approve_via": '"server" accepts approvals only through lastgood serve, from API tokens',
}
"""What a wrong value of these approval keys is told, beside what the key accepts."""


def _flag(table: dict[str, Any], name: str, default: bool, key: str, where: str) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{key}.{name} = {value!r} in {where} must be true or false", hint=_HINTS.get(name)
        )
    return value


def _choice(
    table: dict[str, Any], name: str, allowed: tuple[str, ...], key: str, where: str
) -> str:
    """One of ``allowed``; the first is the default."""
    value = table.get(name, allowed[0])
    if value not in allowed:
        choices = " or ".join(f'"{choice}"' for choice in allowed)
        raise ConfigError(
            f"{key}.{name} = {value!r} in {where} must be {choices}", hint=_HINTS.get(name)
        )
    return str(value)


def _positive_duration(value: Any, name: str, where: str) -> float:
    seconds = parse_duration(value, name=name)
    if seconds <= 0:
        raise ConfigError(f"{name} in {where} must be more than 0")
    return seconds


def _parse_rules(
    items: Any, groups: dict[str, tuple[str, ...]], key: str, where: str
) -> tuple[Rule, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{key}.rule in {where} must be an array of tables ([[{key}.rule]])")
    rules: list[Rule] = []
    for index, item in enumerate(items):
        rule = _parse_rule(item, groups, f"{key}.rule #{index + 1}", where)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{key}.rule: two rules are named {rule.name!r} in {where}")
        rules.append(rule)
    return tuple(rules)


def _parse_rule(item: Any, groups: dict[str, tuple[str, ...]], key: str, where: str) -> Rule:
    if not isinstance(item, dict):
        raise ConfigError(f"{key} in {where} must be a table")
    unknown = sorted(set(item) - _RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {key} in {where}",
            hint=f"known keys: {', '.join(sorted(_RULE_KEYS))}",
        )
    name = item.get("name", f"rule-{key.rsplit('#', 1)[-1]}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name in {where} must be a non-empty string")
    paths = item.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(
            f"{key}.paths in {where} must be a list of path globs",
            hint='write paths = ["prompts/**", "scoring/*.yaml"]',
        )
    risk = item.get("risk")
    if risk is not None and risk not in RISKS:
        raise ConfigError(f'{key}.risk = {risk!r} in {where} must be "low", "medium" or "high"')
    standard = item.get("standard", False)
    if not isinstance(standard, bool):
        raise ConfigError(f"{key}.standard = {standard!r} in {where} must be true or false")
    limits = {
        limit: _count(item[limit], f"{key}.{limit}", where)
        for limit in ("min_files", "max_files", "max_lines")
        if limit in item
    }
    conditions = bool(paths) or risk is not None or bool(limits)
    if not conditions:
        raise ConfigError(
            f"{key} ({name}) in {where} matches every change: give it paths, risk or a limit",
            hint="the environment's own approvers and required cover every other change",
        )
    if limits.get("min_files", 0) > limits.get("max_files", limits.get("min_files", 0)):
        raise ConfigError(
            f"{key} ({name}) in {where} has min_files above max_files: it can never match",
            hint="swap them, or drop one",
        )
    if standard and ("approvers" in item or "required" in item):
        raise ConfigError(
            f"{key} ({name}) in {where} is standard (pre-approved), so it takes no approvers",
            hint="drop approvers and required, or set standard = false",
        )
    approvers = _approvers(item.get("approvers", []), groups, f"{key}.approvers", where)
    required = _count(item.get("required", 1), f"{key}.required", where)
    _satisfiable(approvers, required, groups, f"{key} ({name})", where)
    return Rule(
        name=name,
        paths=tuple(paths),
        risk=risk,
        approvers=approvers,
        required=required,
        standard=standard,
        **limits,
    )


def _satisfiable(
    approvers: tuple[str, ...], required: int, groups: dict[str, tuple[str, ...]], key: str,
    where: str,
) -> None:  # fmt: skip
    """Refuse a requirement more people must meet than its approvers name: every request
    routed to it would wait until it expired. (The requester, who may not approve, is not
    known until a request is opened.)"""
    if approvers and required > len(people(approvers, groups)):
        named = len(people(approvers, groups))
        raise ConfigError(
            f"{key} in {where} needs {required} approvals from {' or '.join(approvers)}, who "
            f"are {named} {'person' if named == 1 else 'people'}: no request could be approved",
            hint="lower required, or add people to the group ([groups])",
        )


def _approvers(
    value: Any, groups: dict[str, tuple[str, ...]], key: str, where: str
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{key} in {where} must be a list of people and group names",
            hint='write approvers = ["ops", "dana"] (groups come from [groups])',
        )
    return tuple(v.strip() for v in value)


def _count(value: Any, key: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{key} = {value!r} in {where} must be a whole number ≥ 0")
    return value


# ---- routing and counting ---------------------------------------------------------------------


def route(policy: ApprovalPolicy, change: Change) -> Routing:
    """What ``change`` needs under ``policy``: every matching rule's approvals, and the
    environment's own approvers for any changed path no matching rule covers. A path a
    matching standard rule covers needs nothing; a change all of whose paths are covered that
    way is a standard change, and the rule is recorded."""
    matched = [rule for rule in policy.rules if _matches(rule, change)]
    requiring = [rule for rule in matched if not rule.standard]

    def covered(path: str) -> bool:
        return any(not rule.paths or matches(path, rule.paths) for rule in matched)

    requirements = [Requirement(r.name, r.approvers, r.required) for r in requiring]
    if not all(covered(path) for path in change.paths):
        requirements.append(Requirement("default", policy.approvers, policy.required))
    standard = next((r.name for r in matched if r.standard), None) if not requirements else None
    return Routing(change.risk, len(change.paths), change.lines, tuple(requirements), standard)


def _matches(rule: Rule, change: Change) -> bool:
    files = len(change.paths)
    checks = (
        not rule.paths or any(matches(path, rule.paths) for path in change.paths),
        rule.risk is None or RISKS.index(change.risk) >= RISKS.index(rule.risk),
        rule.min_files is None or files >= rule.min_files,
        rule.max_files is None or files <= rule.max_files,
        rule.max_lines is None or change.lines <= rule.max_lines,
    )
    return all(checks)


def people(approvers: tuple[str, ...], groups: dict[str, tuple[str, ...]]) -> set[str]:
    """The people ``approvers`` names: each group's members, and each name that is no group."""
    found: set[str] = set()
    for name in approvers:
        found.update(groups.get(name, (name,)))
    return found


def may_review(person: str, routing: Routing, groups: dict[str, tuple[str, ...]]) -> bool:
    """Whether ``person`` is one of the approvers any requirement of ``routing`` names."""
    return any(
        not requirement.approvers or person in people(requirement.approvers, groups)
        for requirement in routing.requirements
    )


def tally(
    routing: Routing,
    groups: dict[str, tuple[str, ...]],
    votes: list[Vote],
    *,
    requester: str,
    self_approval: bool,
    dismissed: int = 0,
) -> Tally:
    """Whether ``votes`` (each person's latest word on the present content) meet ``routing``."""
    counted = [v for v in votes if self_approval or v.person != requester]
    approving = {v.person for v in counted if v.verdict == "approved"}
    rejecting = tuple(sorted(v.person for v in counted if v.verdict == "rejected"))
    missing = []
    for requirement in routing.requirements:
        eligible = people(requirement.approvers, groups) if requirement.approvers else approving
        have = len(approving & eligible)
        if have < requirement.required:
            missing.append(f"{requirement.required - have} more: {requirement.describe()}")
    return Tally(
        approved=not missing and not rejecting,
        rejected_by=rejecting,
        approved_by=tuple(sorted(approving)),
        missing=tuple(missing),
        dismissed=dismissed,
    )


def emergency_tally(
    routing: Routing,
    groups: dict[str, tuple[str, ...]],
    votes: list[Vote],
    *,
    requester: str,
    needed: int,
) -> Tally:
    """The reduced review of an emergency: ``needed`` approvals from anyone the routing names
    (never the requester), and no rejection."""
    counted = [v for v in votes if v.person != requester]
    approving = {v.person for v in counted if v.verdict == "approved"}
    eligible = {p for p in approving if may_review(p, routing, groups)}
    rejecting = tuple(sorted(v.person for v in counted if v.verdict == "rejected"))
    missing = () if len(eligible) >= needed else (
        f"{needed - len(eligible)} more: {needed} emergency approval(s) from the routed approvers",
    )  # fmt: skip
    return Tally(
        approved=not missing and not rejecting,
        rejected_by=rejecting,
        approved_by=tuple(sorted(eligible)),
        missing=missing,
    )


def latest_votes(
    entries: list[Any], *, content_hash: str, base_hash: str
) -> tuple[list[Vote], int]:
    """Each person's latest approval or rejection of exactly this content and base, and how
    many approvals were given to other content (dismissed, though kept in the timeline)."""
    latest: dict[str, Vote] = {}
    others: set[tuple[str, str, str]] = set()
    for entry in entries:
        if entry.action not in ("approved", "rejected"):
            continue
        if entry.content_hash == content_hash and entry.base_hash == base_hash:
            latest[entry.actor] = Vote(entry.actor, entry.action, entry.comment, entry.at)
        elif entry.action == "approved":
            others.add((entry.actor, entry.content_hash, entry.base_hash))
    return list(latest.values()), len(others)
