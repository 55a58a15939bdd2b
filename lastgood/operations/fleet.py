"""The fleet view: which consumers of a served environment run which version, and when a change
has reached all of them.

A rollback on a served environment is *complete* when every live consumer reports the restored
version. Consumers are SDK processes and host agents (``lastgood agent``) alike: an agent reports
the version its host's target really serves, and its host-local checks, which the standing
shows beside the count ("1 host check failing: web-2"). "Live" means the consumer spoke to the
server within ``STALE_AFTER`` seconds (an SDK holding a long-poll speaks at least every 30 s).
An SDK process that has never served a config (it reports no version: an application that
failed at start, or one still starting) is not counted either, only shown apart ("2 without
config"): it follows nothing, and an application in a crash loop leaves one such report per
attempt. A host agent whose host serves nothing is counted, as not following.
The time to all is measured from the switch (the ledger's ``activated_at``) to the moment the
last live consumer reported the new version; after a gradual rollout ended before it finished
(aborted, or its deploy gone), from the moment its consumers were sent back to the stable
version (that record's ``finished_at``, the removal of the pointer); after a rollout's step
failed, from the removal of its pointer too (the requested_at of the automatic rollback, whose
source is ``rollout``), always: the consumers' reports and that record race, and the same
event must not be timed from two moments. A fleet whose last switch came before that moment
has no time to give (never a clamped 0).
A consumer first seen after that moment (an application started since) never served the
version the fleet left: it is counted, and shown apart ("2 joined since the switch"), but left
out of the time, which would otherwise be the moment it happened to start.

The server's API and its web page both read the fleet, and wait for it after a switch, through
:func:`read_fleet` and :func:`wait_for_fleet`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from lastgood.operations.place import Place
from lastgood.record import Record, as_dict, field
from lastgood.rows import HEALTH_FAILING, Consumer, Deployment
from lastgood.units import format_duration, plural

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.rollout import Pointer

STALE_AFTER = 90.0
GATHER_EVERY = 0.1  # seconds between gatherings of every server's reports while one waits
ENDED_EARLY = ("aborted", "interrupted")
"""A deploy record's statuses when its rollout ended before it finished (see :func:`sent_back`)."""


class Reports(Protocol):
    """Consumers' reports as a server holds them (:class:`lastgood.server.consumers.Consumers`):
    its own, merged with those that other servers on the same store flushed."""

    def of(self, env: str) -> list[Consumer]:
        """The consumers of ``env``, newest report each."""
        ...

    def gather(self, read_within: float | None = None) -> None:
        """Count what every worker of this server heard until now; read other servers'
        reports again when the last read is older than ``read_within`` seconds (None: as
        the server reads them anyway). Never raises for a store that fails."""
        ...


class FleetStanding(Record):
    """How far the live version of one served environment has spread."""

    env: str
    version: int | None
    total: int
    following: int
    behind: list[str] = field(default_factory=list)  # "name (v6)" of live consumers not on it
    time_to_all: float | None = None
    verb: str = "live"  # "restored" after a rollback
    gone: int = 0  # consumers not heard from within STALE_AFTER (not counted)
    agents: int = 0  # of the live consumers, how many are host agents
    failing: list[str] = field(default_factory=list)  # "name: detail" of agents failing checks
    without_config: int = 0  # live consumers that serve no version at all (not counted)
    joined_since: int = 0  # counted consumers first seen after the switch (not in the time)
    told_at: float | None = None  # when the switch told the fleet (see _told_at); None: unknown

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.following == self.total

    @property
    def summary(self) -> str:
        """``restored on 57/57 consumers in 0.3 s`` or who has not followed yet."""
        apart = f"{self.without_config} without config" if self.without_config else ""
        if self.total == 0:
            return f"no live consumers ({apart})" if apart else "no live consumers"
        if self.joined_since:  # counted, unlike those without config: named first
            joined = f"{self.joined_since} joined since the switch"
            apart = f"{joined}; {apart}" if apart else joined
        label = "-" if self.version is None else f"v{self.version}"
        took = (
            f" in {format_duration(self.time_to_all)}"
            if self.complete and self.time_to_all is not None
            else ""
        )
        agents = f" ({plural(self.agents, 'agent')})" if self.agents else ""
        text = f"{label} {self.verb} on {self.following}/{self.total} consumers{agents}{took}"
        if self.behind:
            shown = ", ".join(self.behind[:10])
            more = f" and {len(self.behind) - 10} more" if len(self.behind) > 10 else ""
            text += f"; not following: {shown}{more}"
        if self.failing:
            names = ", ".join(entry.partition(": ")[0] for entry in self.failing[:10])
            more = f" and {len(self.failing) - 10} more" if len(self.failing) > 10 else ""
            count = len(self.failing)
            text += f"; {plural(count, 'host check')} failing: {names}{more}"
        return f"{text}; {apart}" if apart else text

    def to_json(self) -> dict[str, Any]:
        data = as_dict(self)
        data.update(complete=self.complete, summary=self.summary)
        return data


def standing(
    env: str,
    consumers: Iterable[Consumer],
    *,
    version: int | None,
    change: Deployment | None,
    now: float | None = None,
    stale_after: float = STALE_AFTER,
) -> FleetStanding:
    """The fleet of ``env`` against its live ``version``, switched by ledger record ``change``."""
    now = time.time() if now is None else now
    everyone = list(consumers)
    live, without_config = serving(everyone, now, stale_after)
    on_it = [c for c in live if version is not None and c.version == version]
    behind = sorted(  # one pass: a fleet of thousands is compared by version, not record
        f"{c.name} ({'-' if c.version is None else f'v{c.version}'})"
        for c in live
        if version is None or c.version != version
    )
    told_at = _told_at(change, version)
    joined = [c for c in live if joined_after(c, told_at)]
    time_to_all = None
    if live and len(on_it) == len(live) and len(joined) < len(on_it):
        last = max(c.since for c in on_it if not joined_after(c, told_at))
        time_to_all = _time_to_all(change, version, last)
    restored = change is not None and (change.is_rollback or change.to_version != version)
    return FleetStanding(
        env=env,
        version=version,
        total=len(live),
        following=len(on_it),
        behind=behind,
        time_to_all=time_to_all,
        verb="restored" if restored else "live",
        gone=len(everyone) - len(live) - without_config,
        agents=sum(1 for c in live if c.kind == "agent"),
        failing=sorted(
            f"{c.name}: {c.detail or 'a check failed'}" for c in live if c.health == HEALTH_FAILING
        ),
        without_config=without_config,
        joined_since=len(joined),
        told_at=told_at,
    )


def joined_after(consumer: Consumer, moment: float | None) -> bool:
    """Whether ``consumer`` was first heard from after ``moment`` (unknown: it was not): it
    joined since the switch (:attr:`FleetStanding.told_at`), so it never had the version left."""
    first = consumer.first_seen
    return moment is not None and first is not None and first > moment


def serving(
    consumers: list[Consumer], now: float, stale_after: float = STALE_AFTER
) -> tuple[list[Consumer], int]:
    """The live consumers a fleet counts, and how many live SDK processes it leaves out because
    they serve no version: they never got a config, so they cannot follow a change. A host
    agent serving nothing is counted (as not following): its host should serve the version."""
    live = [c for c in consumers if now - c.seen_at <= stale_after]
    counted = [c for c in live if c.version is not None or c.kind == "agent"]
    return counted, len(live) - len(counted)


def switch_of(records: Iterable[Deployment], version: int | None) -> Deployment | None:
    """The newest ledger record that made ``version`` live, or that sent consumers back to it
    by ending a rollout before it finished (the change the fleet must follow)."""
    for record in records:
        if record.to_version == version and record.activated_at is not None:
            return record
        if sent_back(record, version):
            return record
    return None


def sent_back(record: Deployment, version: int | None) -> bool:
    """Whether ``record`` is a deploy that went live for some consumers (a gradual rollout) and
    ended before it finished, which put them back on ``version``, the one it started from."""
    return (
        record.kind == "deploy"
        and record.status in ENDED_EARLY
        and record.from_version == version
        and record.activated_at is not None
        and record.finished_at is not None
    )


def _told_at(change: Deployment | None, version: int | None) -> float | None:
    """The moment ``change`` told the fleet to serve ``version``; None when unknown.

    The switch (``activated_at``), or the end of a rollout (``finished_at``). An automatic
    rollback after a rollout's failed step (source ``rollout``) began earlier, when the step
    removed its pointer (its ``requested_at``): that sent every consumer back before the ledger
    recorded the restore. It is that moment whether the last consumer reports before the
    record's ``activated_at`` or after it (a slower store, a polled target, more consumers):
    trying ``activated_at`` first timed the same event from two moments, and understated the
    second by the time between the unlink and the record."""
    if change is None:
        return None
    if change.to_version != version:
        return change.finished_at
    if change.kind == "auto-rollback" and change.source == "rollout":
        return change.requested_at
    return change.activated_at


def _time_to_all(change: Deployment | None, version: int | None, last: float) -> float | None:
    """From when ``change`` told the fleet to serve ``version`` (:func:`_told_at`) to
    ``last``, the last consumer's switch; None when unknown, never a made-up 0. A last switch
    before that moment means the fleet did not move for this change (nobody was in a failed
    step's cohort): no time to give."""
    moment = _told_at(change, version)
    return None if moment is None or last < moment else last - moment


def read_fleet(project: Project, env: str, reports: Reports | None = None) -> FleetStanding | None:
    """The fleet of a served environment now; None for any other environment. Reads only.

    Measured against what the target serves, not what a server's feed has published yet: right
    after a switch the feed may still hold the old version, and a fleet on it is not "complete".
    The consumers are those ``reports`` holds (a server's own view, fresher than the store's),
    gathered from every worker of the server first, or the store's without it."""
    place = _served(project, env)
    if place is None:
        return None
    if reports is not None:
        reports.gather()
    return _fleet(place, reports)


def wait_for_fleet(
    project: Project, env: str, reports: Reports, seconds: float
) -> FleetStanding | None:
    """Wait until every live consumer serves the live version, or ``seconds`` pass; the fleet
    as it stands then. Reads only.

    Consumers of other servers on the same store count too: ``reports`` gathers every worker's
    and reads the other servers' from the store every :data:`GATHER_EVERY` seconds while this
    waits, and once more at the deadline, so a fleet answered as not complete is not complete
    as far as any worker knows then."""
    deadline = time.monotonic() + seconds
    place = _served(project, env)
    gathered = -GATHER_EVERY
    while True:
        now = time.monotonic()
        if now - gathered >= GATHER_EVERY or now >= deadline:
            reports.gather(read_within=0.0)  # a store blip only hides the others' reports
            gathered = now
        if place is None:
            return None
        found = _fleet(place, reports)
        if found.complete or found.total == 0 or now >= deadline:
            return found
        time.sleep(0.01)


def _served(project: Project, env: str) -> Place | None:
    """``env`` resolved when it is a served environment; None for any other name, defined or
    not: there is no fleet there, and asking is no error."""
    settings = project.config.environments.get(env)
    if settings is None or settings.target.type != "served":
        return None
    return Place(project, env)


def _fleet(place: Place, reports: Reports | None) -> FleetStanding:
    """The fleet of the served ``place`` now, against what its target serves."""
    env = place.name
    live = place.target.live()
    version = live.version if live else None
    records = place.store.deployments(env, limit=50)
    consumers = place.store.consumers(env) if reports is None else reports.of(env)
    rolling = _rollout(place)
    if rolling is not None:
        from lastgood.operations.rollout_control import rolling_standing

        return rolling_standing(env, consumers, rolling)
    return standing(env, consumers, version=version, change=switch_of(records, version))


def _rollout(place: Place) -> Pointer | None:
    """The gradual rollout under way on ``place``'s served target, if any (unreadable: none)."""
    from lastgood.errors import LastgoodError
    from lastgood.targets.served import ServedTarget

    if not isinstance(place.target, ServedTarget):
        return None
    try:
        return place.target.rollout()
    except LastgoodError:
        return None
