"""Turn a version reference into a version, reading the target for ``live``."""

from __future__ import annotations

from lastgood import refs
from lastgood.errors import NotFoundError, UsageError
from lastgood.operations.place import Place
from lastgood.project import Project
from lastgood.rows import VersionInfo


def resolve(project: Project, text: str, *, env: str | None = None) -> VersionInfo:
    """The version ``text`` names; ``env`` is the environment the command is about."""
    ref = refs.parse(text)
    if ref.env is not None:
        project.config.environment(ref.env)  # an unknown ENV: prefix is an error, not ignored
    store = project.store
    if ref.kind == "number":
        return store.version(int(ref.value))
    if ref.kind == "hash":
        return _by_hash(project, ref)
    if ref.kind == refs.GIT:
        return _by_commit(project, ref.value)
    env_name = ref.env or env or project.config.default_environment()
    if env_name is None:
        raise UsageError(f"{text!r} needs an environment", hint="write it as ENV:" + ref.value)
    number = _keyword_version(Place(project, env_name), ref.kind)
    if number is None:
        raise refs.not_found(ref, env_name)
    return store.version(number)


def _by_hash(project: Project, ref: refs.Ref) -> VersionInfo:
    matches = project.store.versions_by_hash(ref.value)
    distinct = {version.content_hash for version in matches}
    if len(distinct) > 1:
        raise UsageError(
            f"hash prefix {ref.value!r} is ambiguous ({len(distinct)} contents match)",
            hint="give more hex digits",
        )
    if matches:
        return matches[0]
    if ref.value.isdigit():
        return project.store.version(refs.version_number(ref.value))
    raise refs.not_found(ref)


def _keyword_version(place: Place, keyword: str) -> int | None:
    if keyword == "live":
        release = place.target.live()
        return None if release is None else release.version
    state = place.store.env_state(place.name)
    if keyword == "last-good":
        return state.last_good
    live = place.target.live()
    live_number = live.version if live else state.live_version
    for record in place.store.deployments(place.name):
        came_from = record.from_version
        switched_here = record.to_version == live_number and record.activated_at is not None
        if switched_here and came_from is not None and came_from != live_number:
            return came_from
    return None


def _by_commit(project: Project, ref: str) -> VersionInfo:
    """The version ``git:REF`` names (reads only): the newest taken from that commit, else the
    newest holding exactly what the commit holds; NotFoundError when none does."""
    from lastgood.gitfiles import commit_files
    from lastgood.gitrepo import Repo

    repo = Repo.require(project.root)
    sha = repo.resolve(ref)
    taken = project.store.versions_of_commit(sha)
    if taken:
        return taken[0]
    found = commit_files(repo, sha, project.config.versioning, strict=False)
    same = project.store.versions_with_content(found.bundle.content_hash)
    if same and not found.left_out:
        return same[0]
    raise NotFoundError(
        f"git:{ref} (commit {sha[:12]}) is not recorded as a version",
        hint=f"deploy it with 'lastgood deploy ENV --commit {ref}', or record the history "
        "with 'lastgood import-git'",
    )
