"""Host-local checks: the environment's checks from the host workspace, run on this host.

They run after each switch and every ``check_every`` seconds, against the files the target
really serves (``LASTGOOD_PATH``) and the local app (an ``http`` check on 127.0.0.1, a
``command``). The result goes to the server with the agent's next report, where the fleet view
shows it. A check that measures a value reports it as a metric under the check's name (when
the name is a metric name: ``web-latency``, not ``web latency``), so a ``fleet`` check can
compare a rollout's hosts with the rest. The agent does not roll back on its own: the server
decides; a host that fails its checks is shown, and a person may roll the host back offline.
"""

from __future__ import annotations

from lastgood.checks import Check, CheckContext, CheckResult, run_check
from lastgood.client.metrics import metric_name_problem
from lastgood.comparison import measured
from lastgood.config import Config
from lastgood.record import Record
from lastgood.rows import HEALTH_FAILING, HEALTH_OK
from lastgood.targets.base import Release, Target


class HostHealth(Record):
    """``health`` ok / failing (None when there are no checks) and what failed."""

    health: str | None
    detail: str | None = None

    @property
    def failing(self) -> bool:
        return self.health == HEALTH_FAILING

    def describe(self) -> str:
        if self.health is None:
            return "no host checks configured"
        return "host checks pass" if not self.failing else f"host check failing: {self.detail}"


def build_host_checks(config: Config, env: str) -> list[Check]:
    """The checks of ``env`` in the host workspace; ConfigError on a bad option, at start."""
    from lastgood.operations.checking import build_checks

    return build_checks(config.environment(env).checks)


def check_host(
    checks: list[Check], config: Config, env: str, target: Target, live: Release | None
) -> HostHealth:
    """Run every check once against what ``target`` serves; runs only the checks' probes."""
    return check_host_values(checks, config, env, target, live)[0]


def check_host_values(
    checks: list[Check], config: Config, env: str, target: Target, live: Release | None
) -> tuple[HostHealth, dict[str, float]]:
    """:func:`check_host`, and the values the checks measured, by check name (those whose
    name is a metric name); runs only the checks' probes."""
    if not checks:
        return HostHealth(None), {}
    context = CheckContext(
        env=env,
        version=None if live is None else live.version,
        path=target.live_path(),
        root=config.root,
    )
    results = [run_check(check, context) for check in checks]
    return _health(results), _values(results)


def _values(results: list[CheckResult]) -> dict[str, float]:
    return {
        result.name: value
        for result in results
        if (value := measured(result.data)) is not None and metric_name_problem(result.name) is None
    }


def _health(results: list[CheckResult]) -> HostHealth:
    failed = [result for result in results if not result.ok]
    if not failed:
        return HostHealth(HEALTH_OK)
    first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return HostHealth(HEALTH_FAILING, f"{first.name}: {first.detail}"[:180] + more)
