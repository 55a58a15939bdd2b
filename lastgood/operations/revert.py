"""``revert``: take some paths back to an earlier version, keep the rest of what is live.

A rollback puts a whole version back. Often one file of a change was wrong and the rest was
right: ``lastgood revert production prompts/score.txt -m WHY`` makes a new version equal to what
production serves, with those paths as they were in an earlier version, and deploys it — or,
where the environment requires approval, opens a change request for it, like any other change.

Which earlier version: ``--from REF`` for all paths, or by default, for each path, the newest
version that was last known good in the environment and held that path differently from what
is live: the last good state before the change that touched it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lastgood.bundle import Bundle
from lastgood.errors import NotFoundError, RefusedError, UsageError
from lastgood.operations.place import Place
from lastgood.operations.resolve import resolve
from lastgood.outcome import Outcome
from lastgood.project import Project
from lastgood.record import Record, as_dict, field
from lastgood.rows import GOOD, VersionInfo
from lastgood.workspace import check_relative_path

if TYPE_CHECKING:
    from lastgood.operations.requests import RequestView


class Reverted(Record):
    """What a revert made and did: the new version, where each path came from, and the deploy
    (or the change request) that carries it."""

    version: VersionInfo
    taken: dict[str, str]  # path → the version it was taken from ("v7"), or "removed in v7"
    outcome: Outcome | None = None
    request: RequestView | None = None  # where the environment requires approval
    changed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The deploy's exit code; 0 when a change request carries the new version."""
        return self.outcome.exit_code if self.outcome is not None else 0

    def to_json(self) -> dict[str, Any]:
        """The shape of ``revert --json``, which the server answers too."""
        return {"version": as_dict(self.version), "taken": self.taken, "changed": self.changed,
                "outcome": self.outcome.to_json() if self.outcome else None,
                "request": self.request.to_json() if self.request else None,
                "exit_code": self.exit_code}  # fmt: skip


def revert(
    project: Project,
    env: str,
    paths: list[str],
    *,
    reason: str,
    source_ref: str | None = None,
    via: str = "cli",
) -> Reverted:
    """Record what ``env`` serves with ``paths`` taken from ``source_ref`` (default: per path,
    the last known good before the change that touched it) as a new version, then deploy it or
    open a change request for it (writes). ``via`` is where the request's timeline says it was
    opened (``cli``, ``server``)."""
    place = Place(project, env)
    if not reason.strip():
        raise UsageError(
            "a revert needs a reason", hint=f"say why with -m: lastgood revert {env} PATH -m WHY"
        )
    wanted = [check_relative_path(path.strip("/")) for path in paths]
    live = place.target.live()
    if live is None:
        raise RefusedError(
            f"nothing is live on {env}: there is nothing to revert",
            hint=f"deploy a version first: lastgood deploy {env}",
        )
    current = place.store.files(live.version)
    files, taken = dict(current), {}
    fixed = resolve(project, source_ref, env=env) if source_ref is not None else None
    for path in wanted:
        source = fixed or _last_good_before_change(place, path, current, live.version)
        earlier = place.store.files(source.number)
        if not _under(path, current) and not _under(path, earlier):
            raise NotFoundError(
                f"{path} is neither in v{live.version} (live on {env}) nor in {source.label}",
                hint="name a file or folder of the configuration, as 'lastgood show' lists it",
            )
        for name in _under(path, current):
            del files[name]
        files.update({name: earlier[name] for name in _under(path, earlier)})
        taken[path] = source.label if _under(path, earlier) else f"removed in {source.label}"
    changed = sorted(n for n in set(files) | set(current) if files.get(n) != current.get(n))
    if not changed:
        raise RefusedError(
            f"{', '.join(wanted)} already read on {env} as in the version they would come from",
            hint="name another version with --from REF",
        )
    if place.settings.approval is not None:  # refused before the version is recorded
        from lastgood.operations.requests.propose import check_opening

        check_opening(place, reason, via)
    bundle = Bundle(files)
    version = place.store.add_version(bundle, author=project.actor, message=reason, source="revert")
    if place.settings.approval is not None:
        from lastgood.operations.requests import open_request

        request = open_request(project, env, reason=reason, ref=str(version.number), via=via)
        return Reverted(version, taken, request=request, changed=changed)
    from lastgood.operations.deploy import deploy

    outcome = deploy(project, env, ref=str(version.number), message=reason, source="revert")
    return Reverted(version, taken, outcome=outcome, changed=changed)


def _under(path: str, files: dict[str, bytes]) -> list[str]:
    """The files ``path`` names in ``files``: itself, or everything below it as a folder."""
    return sorted(name for name in files if name == path or name.startswith(path + "/"))


def _last_good_before_change(
    place: Place, path: str, current: dict[str, bytes], live: int
) -> VersionInfo:
    """The newest version that was good in the environment and held ``path`` differently from
    what is live now: where that path stood before the change that touched it."""
    store = place.store
    now = {name: current[name] for name in _under(path, current)}
    good = sorted(
        (n for n, verdict in store.verdicts(place.name).items() if verdict == GOOD and n != live),
        reverse=True,
    )
    for number in good:
        try:
            files = store.files(number)
        except NotFoundError:  # pruned
            continue
        if {name: files[name] for name in _under(path, files)} != now:
            return store.version(number)
    raise NotFoundError(
        f"no earlier good version on {place.name} held {path} differently from v{live}",
        hint=f"name the version to take it from: lastgood revert {place.name} {path} --from REF",
    )
