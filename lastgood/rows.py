"""The store's rows as plain records: versions, environment state, deployments, leases, events.

They are frozen :class:`~lastgood.record.Record` classes (``record.py`` is the base class;
this module is what the store reads and writes), free of any database driver, so the verbs,
the CLI and the server can hold and render them without importing the database layer.
"""

from __future__ import annotations

import json
from typing import Any

from lastgood.record import Record, as_dict

GOOD = "good"
BAD = "bad"
WITHDRAWN = "withdrawn"


class VersionInfo(Record):
    """One immutable version."""

    number: int
    content_hash: str
    parent: int | None
    author: str
    message: str
    source: str
    created_at: float
    file_count: int
    total_size: int
    git_commit: str | None = None  # the commit it was taken from, in a git workspace
    git_dirty: bool | None = None  # True: the folder held uncommitted changes then

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def short_hash(self) -> str:
        return self.content_hash[:8]

    @property
    def subject(self) -> str:
        """The message's first line: a git commit's subject, where a list has one line."""
        return subject(self.message)


def subject(text: str) -> str:
    """The first line of ``text`` (a commit message's subject), for a line that has room for
    no more."""
    return text.partition("\n")[0].strip()


def short_commit(commit: str | None, dirty: bool | None, width: int = 10) -> str:
    """A version's git commit as a person reads it: ``2ed52a1046``, or ``2ed52a1046-dirty``
    when the folder held uncommitted changes then (as ``git describe --dirty`` says); empty
    outside git. The CLI's tables and the web page print it the same way."""
    if not commit:
        return ""
    return commit[:width] + ("-dirty" if dirty else "")


class EnvState(Record):
    """What the ledger believes about an environment."""

    name: str
    live_version: int | None
    last_good: int | None
    updated_at: float | None


class Deployment(Record):
    """One ledger record: a deploy, rollback, automatic rollback, offline rollback or reconcile."""

    id: int
    env: str
    kind: str
    status: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    source: str
    parent: int | None
    trigger_at: float | None
    requested_at: float
    activated_at: float | None
    verified_at: float | None
    failed_at: float | None
    finished_at: float | None
    detail: str

    @property
    def time_to_active(self) -> float | None:
        """Trigger (or request) to restored version active: the restore time of a rollback."""
        start = self.trigger_at or self.requested_at
        return None if self.activated_at is None else self.activated_at - start

    @property
    def time_to_verified(self) -> float | None:
        start = self.trigger_at or self.requested_at
        return None if self.verified_at is None else self.verified_at - start

    @property
    def is_rollback(self) -> bool:
        return self.kind in ("rollback", "auto-rollback", "offline-rollback")

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data["time_to_active"] = self.time_to_active
        data["time_to_verified"] = self.time_to_verified
        return data


class CheckRecord(Record):
    """One check result kept in the ledger."""

    deployment: int | None
    env: str
    phase: str
    round: int
    name: str
    ok: bool
    detail: str
    duration: float
    at: float
    value: float | None = None
    """The number the check measured, when it measures one (``data["value"]``)."""
    baseline: float | None = None
    """What ``value`` was compared with (``max_drop`` / ``max_rise``), when it was."""


class EventRecord(Record):
    """One event as kept in the ledger."""

    id: int
    at: float
    kind: str
    env: str | None
    version: int | None
    deployment: int | None
    message: str
    data: str

    def to_json(self) -> dict[str, Any]:
        record = as_dict(self)
        record["data"] = json.loads(self.data or "{}")
        return record


class Lease(Record):
    """A held lease: proof that this process may change an environment until ``expires_at``."""

    name: str
    token: str
    holder: str
    purpose: str
    host: str
    pid: int
    pid_start: str
    acquired_at: float
    expires_at: float


class DocumentVersion(Record):
    """One version of a tracked document: its normalized content (a blob) and its diff."""

    name: str
    version: int
    content_hash: str
    size: int
    source: str
    diff: str
    added: int
    removed: int
    at: float

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)


class Delivery(Record):
    """One attempt to deliver a notification, kept so nobody has to guess what was sent."""

    id: int
    at: float
    route: str
    destination: str
    event: str
    env: str | None
    key: str
    attempt: int
    status: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)


class ApiToken(Record):
    """An API token as the store keeps it: never the secret, only its SHA-256.

    ``envs`` is a comma-separated list of the environments the role applies to; empty means all.
    """

    id: int
    name: str
    role: str
    envs: str
    token_hash: str
    created_at: float
    created_by: str
    revoked_at: float | None

    @property
    def env_list(self) -> list[str]:
        return [env for env in self.envs.split(",") if env]

    def to_json(self) -> dict[str, Any]:
        """Everything but the hash: what ``token list`` and the API show."""
        data = as_dict(self)
        del data["token_hash"]
        data["envs"] = self.env_list
        return data


class WebSession(Record):
    """A signed-in visitor of the web page, as the store keeps it.

    ``session_hash`` is the SHA-256 of the cookie's random value (the value itself is never
    stored, so a copy of the store signs nobody in); ``token_hash`` names the token it signed
    in with, whose role and scope apply; ``csrf`` is the secret every changing form sends back.
    """

    session_hash: str
    token_hash: str
    csrf: str
    created_at: float
    last_seen: float


CONSUMER_KINDS = ("sdk", "agent")
"""``sdk``: an application reading live config through the SDK; ``agent``: ``lastgood agent``
putting each version live on a host's own target (see docs/agents.md)."""
HEALTH_OK = "ok"
HEALTH_FAILING = "failing"


class Consumer(Record):
    """One reader of an environment's live config (an SDK process or a host agent), as last
    reported.

    ``since`` is when it started serving ``version``; ``seen_at`` when it last spoke to the server;
    ``first_seen`` when a server first heard from it (None for one recorded before lastgood kept
    it: known from before any switch), which tells a consumer that joined after a switch from
    one that followed it.
    ``health`` is an agent's host-local checks (``ok``, ``failing``, None when none ran) and
    ``detail`` what failed. ``metrics`` is the business metrics it reported, as JSON text
    (``{"lead_score": {"value": 36.5, "version": 7, "at": 1765000000.0}}``: the latest value of
    each, the version it served when it reported it, and when that arrived); see
    :meth:`readings`.
    """

    env: str
    consumer_id: str
    name: str
    version: int | None
    content_hash: str | None
    since: float
    seen_at: float
    kind: str = "sdk"
    health: str | None = None
    detail: str | None = None
    metrics: str | None = None
    first_seen: float | None = None

    def readings(self) -> dict[str, Reading]:
        """The metrics it reported, by name (empty when none, or when the text is unreadable:
        a row written by hand is no reason to fail a check or a page)."""
        if not self.metrics:
            return {}
        try:
            raw = json.loads(self.metrics)
            return {str(name): Reading(float(item["value"]), _version(item.get("version")),
                                       float(item["at"]))
                    for name, item in raw.items()}  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data["metrics"] = {name: as_dict(reading) for name, reading in self.readings().items()}
        return data


class Reading(Record):
    """One metric as a consumer last reported it: the value, the version it served then, and
    when the report arrived (so a value nobody reports again grows old instead of fresh)."""

    value: float
    version: int | None
    at: float


def readings_text(readings: dict[str, Reading]) -> str | None:
    """``readings`` as the JSON text a :class:`Consumer` keeps (None when there are none)."""
    if not readings:
        return None
    return json.dumps({name: as_dict(reading) for name, reading in readings.items()},
                      separators=(",", ":"))  # fmt: skip


def _version(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


REQUEST_OPEN = "open"
"""A change request waiting for approvals, approved and waiting to be applied, or rejected for
its present content (the verdict comes from its entries; see lastgood.approval)."""
REQUEST_STALE = "stale"
"""The environment moved away from the version the request was based on: it needs a fresh look
(``request update``) before it can be applied."""
REQUEST_APPLYING = "applying"
"""Claimed by one ``request apply`` for its deploy: no other apply, update or withdraw can
take it meanwhile; the next read settles it from the ledger when that process is gone."""
REQUEST_APPLIED = "applied"
REQUEST_FAILED = "failed"
REQUEST_WITHDRAWN = "withdrawn"
REQUEST_EXPIRED = "expired"
UNFINISHED_REQUESTS = (REQUEST_OPEN, REQUEST_STALE, REQUEST_APPLYING)
MOVABLE_REQUESTS = (REQUEST_OPEN, REQUEST_STALE)
"""States a person can still change a request in (update, withdraw) and it can expire in."""
REQUEST_STATES = ("waiting", "approved", "rejected", "stale", "applying", "applied", "failed",
                  "withdrawn", "expired", "open", "review", "for-me")  # fmt: skip
"""What ``request list --state`` filters by: a stored status, a review state, ``review`` (an
emergency whose review is open) or ``for-me`` (waiting for the person asking to approve it)."""
"""States in which a request may still go live: prune keeps the versions they name."""


class ChangeRequest(Record):
    """A proposed change to one environment: an exact version (bound to its content hash),
    what it was based on, who asked and why, and how it was routed."""

    number: int
    env: str
    version: int
    content_hash: str
    base_version: int | None
    base_hash: str
    requester: str
    reason: str
    status: str
    risk: str
    routing: str
    apply_at: float | None
    emergency: bool
    created_at: float
    updated_at: float
    deployment: int | None
    detail: str

    @property
    def label(self) -> str:
        return f"#{self.number}"

    @property
    def routing_data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.routing or "{}")
        return loaded

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data["routing"] = self.routing_data
        data["emergency"] = bool(self.emergency)  # SQLite answers 1, PostgreSQL true
        return data


class RequestEntry(Record):
    """One line of a request's timeline: opened, approved, rejected, updated, applied, …; each
    names the content (and the base) it was about, so an approval covers exactly that."""

    id: int
    request: int
    at: float
    actor: str
    action: str
    content_hash: str
    base_hash: str
    comment: str
    via: str

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)


class AuditEntry(Record):
    """One link of the audit chain: what was written (``kind``, ``subject``, ``data``, the
    canonical JSON of the row as written), by whom and when, and the link's ``hash``, which
    covers all of it and the hash of the link before (see :mod:`lastgood.store.chain`)."""

    seq: int
    at: float
    kind: str
    subject: str
    actor: str
    data: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return as_dict(self)


class AuditHead(Record):
    """The newest link of the audit chain, kept outside the table (on targets, in exports) so
    that a table cut short is caught: the chain must still reach ``seq`` with ``hash``."""

    seq: int
    hash: str
