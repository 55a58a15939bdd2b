"""Put a version live (a pointer switch when the target retains it) and verify it.

Shared by rollback and automatic rollback: no validation, no preflight, no bake. Staging happens
only when the target no longer holds the release.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lastgood import failpoint
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.lease import EnvLease
from lastgood.project import Project
from lastgood.records import VersionInfo
from lastgood.targets import Release


def release_of(version: VersionInfo) -> Release:
    return Release(version.number, version.content_hash)


def switch_to(
    project: Project, env: str, lease: EnvLease, version: VersionInfo, *, point: str
) -> float:
    """Make ``version`` live on ``env``'s target; returns when it became active (epoch)."""
    target = project.target(env)
    release = release_of(version)
    if release not in target.retained():
        target.stage(release, project.store.files(version.number))
    lease.fence()
    failpoint.hit(point)
    target.activate(release)
    activated_at = time.time()
    project.store.set_env(env, live_version=version.number)
    return activated_at


@dataclass(frozen=True)
class Verification:
    ok: bool
    rounds: tuple[Round, ...]
    at: float

    def summary(self) -> str:
        return self.rounds[-1].summary() if self.rounds else "no checks configured"


def verify(project: Project, env: str, version: VersionInfo, *, deployment: int) -> Verification:
    """Run check rounds until one passes, at most ``verify_rounds`` of them, ``interval`` apart."""
    settings = project.config.environment(env)
    checks = build_checks(settings.checks)
    context = live_context(project, env, release_of(version))
    rounds: list[Round] = []
    for number in range(1, settings.verify_rounds + 1):
        if number > 1:
            time.sleep(settings.interval)
        done = run_round(
            project, env, checks, context, phase="verify", number=number, deployment=deployment
        )
        rounds.append(done)
        if done.ok:
            break
    ok = not rounds or rounds[-1].ok
    return Verification(ok, tuple(rounds), time.time())
