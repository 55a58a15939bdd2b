"""Fleet checks: consumers report a business metric through the SDK, and a gradual rollout
compares the new cohort's reports with the rest of the fleet's.

The end-to-end test runs a real ``lastgood serve``, real SDK consumers (LiveConfig in this
process, each with a chosen id so its cohort is known) that report ``lead_score`` from the file
they are served, and the real CLI deploying: a version that halves the score is stopped at the
first step, a good one passes every step.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from lastgood.checks import CheckContext, build_check, run_check
from lastgood.checks.fleet import FleetCheck
from lastgood.client import LiveConfig
from lastgood.comparison import Baseline, Comparison, Limit
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError, UsageError
from lastgood.operations.baseline import no_baseline
from lastgood.operations.checking import Round, compared, settled
from lastgood.operations.cohorts import RestOfFleet
from lastgood.rollout import Pointer, cohort
from lastgood.rows import Consumer, Reading, readings_text
from lastgood.server.consumers import Consumers, parse_metrics
from lastgood.store import open_store, schema
from tests.conftest import CHECK_OK, Workspace
from tests.serving import Server
from tests.test_store_migration import alembic_upgrade

Factory = Callable[..., Workspace]

SERVED = textwrap.dedent(
    f"""
    [env.staging]
    target = {{ type = "served", path = "../app", keep = 5 }}
    bake = "0.3s"
    interval = "0.3s"
    failures = 2

    [[env.staging.check]]
    name = "health-file-ok"
    type = "command"
    run = '{CHECK_OK}'

    [env.staging.rollout]
    steps = ["50%", "100%"]
    step_bake = "5s"
    salt = "fleet-test"
    """
)
FLEET_CHECK = textwrap.dedent(
    """
    [[env.staging.check]]
    name = "lead-score"
    type = "fleet"
    metric = "lead_score"
    max_drop = "20%"
    min_consumers = 3
    """
)


SALT = "fleet-test"  # the config's: the same cohorts in every rollout of these tests


def ids_in(low: float, high: float, count: int) -> list[str]:
    """``count`` consumer ids whose cohort on staging lies in [low, high)."""
    found = (f"app-{n}" for n in range(10_000)
             if low <= cohort("staging", f"app-{n}", SALT) < high)  # fmt: skip
    return [next(found) for _ in range(count)]


NEW_COHORT, REST = ids_in(0, 50, 4), ids_in(50, 100, 4)


class Fleet:
    """Consumers that report ``lead_score = 40 * weight``, the weight read from the version
    each one is served, every 50 ms: what an application measuring its own output does."""

    def __init__(self, server: Server, token: str) -> None:
        self.live = {
            who: LiveConfig(server.url, "staging", token=token, consumer_id=who, name=who,
                            cache=False, wait=1, poll=0.2)
            for who in NEW_COHORT + REST
        }  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)
        self._thread.start()

    def _report(self) -> None:
        while not self._stop.wait(0.05):
            for live in self.live.values():
                snapshot = live.snapshot
                if snapshot is not None and "scoring/weight.txt" in snapshot.files:
                    score = 40 * float(snapshot.text("scoring/weight.txt"))
                    if live.snapshot is snapshot:  # still the version it was measured on
                        live.report("lead_score", score)

    def versions(self, ids: list[str]) -> set[int | None]:
        return {self.live[who].version for who in ids}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for live in self.live.values():
            live.close()


@pytest.fixture
def fleet_server(workspace: Factory, store_url: str) -> Iterator[tuple[Workspace, Fleet]]:
    """v1 live (deployed before the fleet check is configured: nobody could report before
    anything was live), a server, and eight reporting consumers, four in the 50 % cohort."""
    ws = workspace(target="served", store=store_url)
    (ws.root / "lastgood.toml").write_text(SERVED)
    ws.healthy("one")
    ws.write("scoring/weight.txt", "1.0\n")
    first = ws.run("deploy", "staging")
    assert first.returncode == 0, first.stderr
    server = Server(ws, "--poll", "0.05").start()
    fleet = None
    try:
        fleet = Fleet(server, server.token("viewer", "staging"))
        (ws.root / "lastgood.toml").write_text(SERVED + FLEET_CHECK)
        yield ws, fleet
    finally:
        if fleet is not None:
            fleet.close()
        server.close()


def test_a_rollout_stops_the_version_that_halves_the_score_against_the_rest_of_the_fleet(
    fleet_server: tuple[Workspace, Fleet],
) -> None:
    ws, fleet = fleet_server
    ws.healthy("two")  # same weight: the score holds
    good = ws.run("deploy", "staging", "-m", "a harmless change")
    assert good.returncode == 0, good.stderr
    assert fleet.versions(NEW_COHORT + REST) == {2}
    project = ws.project()
    store = project.store
    good_rows = [r for r in store.check_records(deployment=_last_deployment(store)) if r.phase ==
                 "bake" and r.name == "lead-score" and r.baseline is not None]  # fmt: skip
    assert good_rows and all(r.ok and r.value == r.baseline == 40.0 for r in good_rows)
    assert any("against the rest of the fleet, mean of 4 consumers on v1" in r.detail
               for r in good_rows)  # fmt: skip

    ws.write("scoring/weight.txt", "0.5\n")  # every lead scores half
    bad = ws.run("deploy", "staging", "-m", "halve the scores")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    said = bad.stdout + bad.stderr
    assert (
        "lead_score 40 → 20 (-50%, over max_drop 20%) against the rest of the fleet, mean of "
        "4 consumers on v2" in said
    )
    assert "stopped at step 1/2 (50%): every consumer is back on v2" in said
    deployment = _last_deployment(store)
    failed = [r for r in store.check_records(deployment=deployment) if not r.ok]
    assert failed and {(r.name, r.value, r.baseline) for r in failed} == {
        ("lead-score", 20.0, 40.0)
    }
    assert "over max_drop 20%" in (store.deployment(deployment).detail or "")
    for who in NEW_COHORT + REST:  # everyone back on v2
        fleet.live[who].wait_for_version(2, timeout=10)


def _last_deployment(store: object) -> int:
    """The newest deploy's ledger record (a failed one is followed by its rollback's)."""
    records = store.deployments("staging", limit=5)  # type: ignore[attr-defined]
    return int(next(r.id for r in records if r.kind == "deploy"))


# ---- the check on its own ---------------------------------------------------------------------


def consumer(name: str, version: int, since: float, **readings: Reading) -> Consumer:
    return Consumer(env="prod", consumer_id=name, name=name, version=version, content_hash="h",
                    since=since, seen_at=since, metrics=readings_text(dict(readings)))  # fmt: skip


def fleet_check(**options: object) -> FleetCheck:
    compare = Comparison(max_drop=Limit(20, percent=True))
    spec = CheckSpec(name="lead-score", type="fleet", timeout=5.0,
                     options={"metric": "lead_score", **options}, compare=compare)  # fmt: skip
    check = build_check(spec)
    assert isinstance(check, FleetCheck)
    return check


def test_the_cohort_counts_fresh_reports_made_on_its_version_only() -> None:
    now = time.time()
    fleet = [
        consumer("a", 7, now - 60, lead_score=Reading(30.0, 7, now - 5)),
        consumer("b", 7, now - 60, lead_score=Reading(10.0, 7, now - 5)),
        consumer("c", 7, now - 60, lead_score=Reading(20.0, 7, now - 1)),
        consumer("stale", 7, now - 900, lead_score=Reading(99.0, 7, now - 600)),  # over 5m
        consumer("before", 7, now - 10, lead_score=Reading(99.0, 7, now - 20)),  # older life
        consumer("other", 7, now - 60, lead_score=Reading(99.0, 6, now - 5)),  # measured on v6
        consumer("on-v6", 6, now - 60, lead_score=Reading(50.0, 6, now - 5)),
        consumer("silent", 7, now - 60),
    ]
    mean = fleet_check().cohort(fleet, 7, now)
    assert sorted(mean.values) == [10.0, 20.0, 30.0] and mean.value == 20.0
    assert mean.describe() == "mean of 3 consumers on v7"
    median = fleet_check(aggregate="median", max_age="15m").cohort(fleet, 7, now)
    assert median.value == 25.0 and len(median.values) == 4  # the stale one counts now

    check = fleet_check(min_consumers=4)
    result = run_check(check, CheckContext("prod", 7, None, Path("."), fleet=lambda env: fleet))
    assert result.ok and result.data == {"inconclusive": True}
    assert result.detail == (
        "inconclusive: 3 consumers on v7 reported lead_score within 5m 00s, fewer than "
        "min_consumers 4"
    )
    over = settled(result)
    assert not over.ok and over.detail.endswith("and the bake time is over")
    assert Round("bake", 1, (result,), now).inconclusive
    assert not Round("bake", 1, (over,), now).inconclusive
    bounded = fleet_check(min=25)
    low = run_check(bounded, CheckContext("prod", 7, None, Path("."), fleet=lambda env: fleet))
    assert not low.ok and low.detail == "lead_score 20 (mean of 3 consumers on v7), expected ≥ 25"
    nowhere = run_check(check, CheckContext("prod", 7, None, Path(".")))
    assert nowhere.ok and "no consumer reports can be read here" in nowhere.detail


def test_a_fleet_failure_names_only_the_bound_or_comparison_that_failed() -> None:
    """A bound the value keeps is not listed next to the one that failed (it read as the
    cause: ``lead_score 18 ..., expected ≥ 0.01; ... over max_drop 20%``)."""
    now = time.time()
    fleet = [consumer(n, 7, now - 60, lead_score=Reading(18.0, 7, now - 5)) for n in "ab"]
    context = CheckContext("prod", 7, None, Path("."), fleet=lambda env: fleet)
    high = run_check(fleet_check(min=0.01, max=10), context)
    assert not high.ok and high.detail == "lead_score 18 (mean of 2 consumers on v7), expected ≤ 10"
    bounded = fleet_check(min=0.01, max=100)
    kept = run_check(bounded, context)
    assert kept.ok and kept.detail == "lead_score 18 (mean of 2 consumers on v7)"
    on_v6 = [consumer(n, 6, now - 60, lead_score=Reading(36.0, 6, now - 2)) for n in "cd"]
    rest = RestOfFleet(no_baseline("-"), [bounded], lambda env: on_v6, "prod", 6)
    dropped = compared(bounded, kept, rest)
    assert not dropped.ok and dropped.detail == (
        "lead_score 18 (mean of 2 consumers on v7); lead_score 36 → 18 (-50%, over max_drop 20%) "
        "against the rest of the fleet, mean of 2 consumers on v6"
    )


def test_the_rest_of_the_fleet_is_the_baseline_until_nobody_is_left_on_the_stable_version() -> None:
    now = time.time()
    check = fleet_check(min_consumers=2)
    on_v6 = [consumer(f"s{n}", 6, now - 60, lead_score=Reading(36.0, 6, now - 2)) for n in (1, 2)]
    before = no_baseline("nothing was live before v1")
    rest = RestOfFleet(before, [check], lambda env: on_v6, "prod", 6)
    assert rest.baseline("lead-score") == Baseline(
        36.0, "mean of 2 consumers on v6", against="the rest of the fleet"
    )
    assert rest.baseline("another-check") is None  # every other check: the pre-switch one
    gone = RestOfFleet(before, [check], lambda env: [], "prod", 6)
    assert gone.baseline("lead-score") is None
    assert gone.missing("lead-score") == (
        "from the rest of the fleet: 0 consumers on v6 reported lead_score within 5m 00s, fewer "
        "than min_consumers 2; before the switch: nothing was live before v1"
    )


def test_the_rest_leaves_out_the_step_cohort_and_is_empty_at_the_last_step() -> None:
    """Consumers just sent the new version still show the stable one (and fresh reports on it)
    until their next request: they are not the rest. At 100 % nobody is, so the check falls
    back on the baseline measured before the rollout (it compared with 'mean of 4 consumers on
    v1' at round 1 of the 100 % step)."""
    now = time.time()
    check = fleet_check(min_consumers=2)
    ids = [f"app-{n}" for n in range(40)]
    inside = [i for i in ids if cohort("prod", i, "s") < 50]
    fleet = [  # all still on v6: the moved ones reported 10, the others 36
        consumer(i, 6, now - 60, lead_score=Reading(10.0 if i in inside else 36.0, 6, now - 2))
        for i in ids
    ]
    at = {"release": "v7-ab", "version": 7, "stable": "v6-cd", "stable_version": 6,
          "steps": (50.0, 100.0), "started_at": now, "step_started_at": now,
          "deployment": None, "salt": "s"}  # fmt: skip
    half = Pointer(percent=50.0, step=1, **at)  # type: ignore[arg-type]
    before = no_baseline("nothing was live before v1")
    rest = RestOfFleet(before, [check], lambda env: fleet, "prod", 6, half)
    baseline = rest.baseline("lead-score")
    assert 0 < len(inside) < 40 and baseline is not None and baseline.value == 36.0
    assert baseline.source == f"mean of {40 - len(inside)} consumers on v6"
    everyone = Pointer(percent=100.0, step=2, **at)  # type: ignore[arg-type]
    last = RestOfFleet(before, [check], lambda env: fleet, "prod", 6, everyone)
    assert last.baseline("lead-score") is None
    assert last.missing("lead-score") == (
        "from the rest of the fleet: at step 2/2 (100%) every consumer was sent v7, so none is "
        "left on v6; before the switch: nothing was live before v1"
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"metric": "lead_score", "max_dorp": "20%"}, "did you mean max_drop?"),
        ({"metric": "lead_score", "min_consumer": 2}, "did you mean min_consumers?"),
        ({"metric": "lead score"}, "metric = 'lead score' is not a metric name"),
        ({"metric": 5}, "metric = 5 is not a metric name"),
        ({}, "metric is missing"),
        ({"metric": "lead_score", "min_consumers": 0}, "min_consumers = 0 must be a whole"),
        ({"metric": "lead_score", "min_consumers": 2.5}, "min_consumers = 2.5 must be a whole"),
        ({"metric": "lead_score", "aggregate": "max"}, "aggregate = 'max' is not mean or median"),
        ({"metric": "lead_score", "max_age": "0s"}, "max_age must be more than 0"),
        ({"metric": "lead_score", "max_age": "soon"}, "is not a duration"),
        ({"metric": "lead_score", "min": "high"}, "min = 'high' is not a number"),
    ],
)
def test_fleet_check_options_are_refused_by_name(options: dict[str, object], words: str) -> None:
    spec = CheckSpec(name="lead-score", type="fleet", timeout=5.0, options=options,
                     compare=Comparison(max_drop=Limit(20, percent=True)))  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        build_check(spec)
    assert words in f"{caught.value.message} {caught.value.hint}"
    assert "fleet check 'lead-score'" in caught.value.message


def test_a_fleet_check_needs_something_to_judge_by(workspace: Factory) -> None:
    spec = CheckSpec(name="lead-score", type="fleet", timeout=5.0, options={"metric": "x"})
    with pytest.raises(ConfigError, match="min, max, max_drop or max_rise is needed"):
        build_check(spec)
    ws = workspace(target="served")
    (ws.root / "lastgood.toml").write_text(
        SERVED + FLEET_CHECK.replace("min_consumers = 3", "min_consumers = 0")
    )
    ws.healthy()
    shown = ws.run("deploy", "staging")
    assert shown.returncode == 2, shown.stderr
    assert not list((ws.base / "app").iterdir())  # refused before anything was staged
    assert "fleet check 'lead-score': min_consumers = 0 must be a whole number" in shown.stderr
    assert "Traceback" not in shown.stderr


# ---- the header, the registry and the store -----------------------------------------------------


def test_the_metrics_header_is_parsed_or_refused_with_a_reason() -> None:
    assert parse_metrics(None) == {} and parse_metrics(" ") == {}
    assert parse_metrics("lead_score=36.5, errors=0,p.99-ms=1e3") == {
        "lead_score": 36.5, "errors": 0.0, "p.99-ms": 1000.0
    }  # fmt: skip
    for bad, words in [
        ("lead_score", "'lead_score' has no '='"),
        ("lead_score=high", "metric 'lead_score': 'high' is not a number"),
        ("lead_score=nan", "is not a finite number"),
        ("lead score=1", "'lead score' is not a metric name"),
        ("=1", "'' is not a metric name"),
        (",".join(f"m{n}=1" for n in range(33)), "carries 33 metrics; at most 32"),
    ]:
        with pytest.raises(UsageError) as caught:
            parse_metrics(bad)
        assert words in caught.value.message, caught.value.message


def test_reported_metrics_keep_their_version_and_time_through_the_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        registry = Consumers(store)
        registry.report("prod", "c1", name="c1", version=6, content_hash="h", now=100.0,
                        metrics={"lead_score": 36.5})  # fmt: skip
        registry.report("prod", "c1", name="c1", version=7, content_hash="k", now=200.0,
                        metrics={"errors": 2})  # fmt: skip
        registry.report("prod", "c1", name="c1", version=7, content_hash="k", now=250.0)
        assert registry.flush() == 1
        (found,) = Consumers(store).of("prod")
        assert found.readings() == {
            "lead_score": Reading(36.5, 6, 100.0), "errors": Reading(2.0, 7, 200.0)
        }  # fmt: skip
        assert found.to_json()["metrics"]["errors"] == {"value": 2.0, "version": 7, "at": 200.0}
    finally:
        store.close()


def kept_before(store_url: str, revision: str) -> None:
    """A store at schema ``revision`` with one consumer recorded ('old', v3 of prod)."""
    import sqlalchemy as sa

    from lastgood.store.database import create_engine

    alembic_upgrade(store_url, revision)
    engine = create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO consumers (env, consumer_id, name, version, content_hash, since, "
            "seen_at, kind) VALUES ('prod', 'old', 'old', 3, 'h', 1.0, 2.0, 'sdk')"
        ))  # fmt: skip
    engine.dispose()


def test_migration_0011_adds_metrics_to_the_consumers_kept_before(store_url: str) -> None:
    import sqlalchemy as sa

    from lastgood.store.database import create_engine

    kept_before(store_url, "0010")
    store = open_store(store_url)
    try:
        (old,) = store.consumers("prod")
        assert (old.version, old.metrics, old.readings()) == (3, None, {})
        store.save_consumers([consumer("new", 4, 5.0, lead_score=Reading(1.5, 4, 6.0))])
        assert store.consumers("prod")[0].readings() == {"lead_score": Reading(1.5, 4, 6.0)}
    finally:
        store.close()
    engine = create_engine(store_url)
    with engine.connect() as connection:
        head = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert head == schema.HEAD


def test_migration_0012_keeps_consumers_recorded_before_as_known_from_before(
    store_url: str,
) -> None:
    """They have no first sight: they count in every fleet's time as they did, and a server
    that hears from them again does not make them new."""

    kept_before(store_url, "0011")
    store = open_store(store_url)
    try:
        (old,) = store.consumers("prod")
        assert old.first_seen is None
        registry = Consumers(store)
        registry.report("prod", "old", name="old", version=3, content_hash="h", now=50.0)
        registry.report("prod", "new", name="new", version=3, content_hash="h", now=60.0)
        assert {c.consumer_id: c.first_seen for c in registry.of("prod")} == {
            "old": None, "new": 60.0}  # fmt: skip
        registry.flush()
        assert {c.consumer_id: c.first_seen for c in store.consumers("prod")} == {
            "old": None, "new": 60.0}  # fmt: skip
    finally:
        store.close()


# ---- through a real server and the SDK ----------------------------------------------------------


@pytest.fixture
def served(workspace: Factory) -> Iterator[tuple[Server, str]]:
    ws = workspace(target="served")
    ws.healthy()
    assert ws.run("deploy", "staging").returncode == 0
    server = Server(ws).start()
    try:
        yield server, server.token("viewer", "staging")
    finally:
        server.close()


def test_a_bad_metrics_header_is_a_400_that_says_why_on_both_paths(
    served: tuple[Server, str],
) -> None:
    server, token = served
    report = {"X-Lastgood-Consumer": "c1", "X-Lastgood-Serving": "1:abc"}
    with server.client(token) as http:
        for score in (1, 36.5):  # the first read caches the token: the second takes the fast path
            headers = {**report, "X-Lastgood-Metrics": f"lead_score={score}"}
            good = http.get("/api/v1/envs/staging/config", headers=headers)
            assert good.status_code == 200, good.text
        bad = http.get("/api/v1/envs/staging/config",
                       headers={**report, "X-Lastgood-Metrics": "lead_score=high"})  # fmt: skip
        assert bad.status_code == 400
        assert bad.json()["error"] == (
            "X-Lastgood-Metrics must be NAME=NUMBER pairs separated by commas; metric "
            "'lead_score': 'high' is not a number"
        )
        assert "lead_score=36.5,errors=0" in bad.json()["hint"]
        body = {"consumer": "c2", "version": 1, "metrics": {"a b": 1}}
        posted = http.post("/api/v1/envs/staging/consumers", json=body)
        assert posted.status_code == 400 and "'a b' is not a metric name" in posted.text
        shown = http.get("/api/v1/envs/staging/consumers").json()["consumers"]
    (c1,) = [c for c in shown if c["consumer_id"] == "c1"]
    assert c1["metrics"]["lead_score"]["value"] == 36.5
    assert c1["metrics"]["lead_score"]["version"] == 1


def test_the_sdk_refuses_bad_reports_and_sends_good_ones_on_its_next_request(
    served: tuple[Server, str],
) -> None:
    server, token = served
    with LiveConfig(server.url, "staging", token=token, consumer_id="sdk-1", cache=False,
                    start=False) as live:  # fmt: skip
        for name, value, words in [
            ("lead score", 1, "'lead score' is not a metric name"),
            ("", 1, "'' is not a metric name"),
            ("x" * 65, 1, "is not a metric name"),
            (5, 1, "a metric name must be text, got int"),
            ("lead_score", "36", "metric 'lead_score': '36' is not a number"),
            ("lead_score", True, "metric 'lead_score': True is not a number"),
            ("lead_score", float("inf"), "is not a finite number"),
            ("lead_score", 10**400, "(401 characters) is not a finite number"),  # not OverflowError
            ("lead_score", Decimal("1e400"), "Decimal('1E+400') is not a finite number"),
            ("lead_score", Decimal("sNaN"), "is not a finite number"),
            ("lead_score", 1j, "metric 'lead_score': 1j is not a number"),
        ]:
            with pytest.raises(UsageError) as caught:
                live.report(name, value)  # type: ignore[arg-type]
            assert words in caught.value.message
        for n in range(32):
            live.report(f"m{n}", n)
        with pytest.raises(UsageError, match="already reports 32 other metrics"):
            live.report("one_more", 1)
        live.report("m0", 36.5)  # a name it already reports: the newest value wins
        live.report("m1", Decimal("1.5"))  # any real number a float holds
        live.report("m2", Fraction(1, 4))
        live.refresh()
        with server.client(token) as http:

            def reported() -> dict[str, object]:
                found = http.get("/api/v1/envs/staging/consumers").json()["consumers"]
                return next((c["metrics"] for c in found if c["consumer_id"] == "sdk-1"), {})

            metrics = reported()
        assert len(metrics) == 32
        assert metrics["m0"]["value"] == 36.5 and metrics["m0"]["version"] == 1  # type: ignore[index]
        assert metrics["m1"]["value"] == 1.5 and metrics["m2"]["value"] == 0.25  # type: ignore[index]
        assert live._unsent_metrics(live.serving) == {}  # sent once: an old value grows old


def test_import_of_the_client_stays_light_with_metrics() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lastgood.client, lastgood.client.metrics; "
        "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'httpx', 'pydantic') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_agents_report_their_host_checks_values_under_the_check_name(tmp_path: Path) -> None:
    from lastgood.agent.health import build_host_checks, check_host_values
    from lastgood.config import load
    from lastgood.targets.directory import DirectoryTarget

    root = tmp_path / "ws"
    root.mkdir()
    (root / "lastgood.toml").write_text(textwrap.dedent(
        """
        [env.prod]
        target = { type = "directory", path = "../live" }

        [[env.prod.check]]
        name = "queue-depth"
        type = "command"
        run = "echo 12"
        value = "last-line"

        [[env.prod.check]]
        name = "odd name"
        type = "command"
        run = "echo 3"
        value = "last-line"
        """
    ))  # fmt: skip
    config = load(root)
    target = DirectoryTarget("prod", {"path": "../live"}, root)
    health, values = check_host_values(build_host_checks(config, "prod"), config, "prod",
                                       target, None)  # fmt: skip
    assert health.health == "ok"
    assert values == {"queue-depth": 12.0}  # a name that is no metric name is not reported


def test_a_bake_that_ends_without_enough_reports_fails_and_restores(workspace: Factory) -> None:
    """No consumer reports: rounds pass as inconclusive while the bake runs, cannot end it, and
    fail from its end on, so the version is rolled back rather than made known good unjudged."""
    from lastgood.operations.deploy import deploy
    from lastgood.outcome import OK, RESTORED

    ws = workspace(target="served")
    plain = SERVED.split("[env.staging.rollout]")[0].replace('bake = "0.3s"', 'bake = "2s"')
    (ws.root / "lastgood.toml").write_text(plain)
    ws.healthy("one")
    project = ws.project()
    assert deploy(project, "staging").exit_code == OK
    (ws.root / "lastgood.toml").write_text(plain + FLEET_CHECK)
    ws.healthy("two")
    project = ws.project()
    unjudged = deploy(project, "staging", message="nobody reports")
    assert unjudged.exit_code == RESTORED, unjudged.summary
    assert (
        "inconclusive: 0 consumers on v2 reported lead_score within 5m 00s, fewer than "
        "min_consumers 3, and the bake time is over" in unjudged.summary
    )
    rows = [r for r in project.store.check_records(deployment=unjudged.deployment.id)
            if r.phase == "bake" and r.name == "lead-score"]  # fmt: skip
    assert any(r.ok and r.detail.startswith("inconclusive: ") for r in rows)  # during the bake
    assert [r.ok for r in rows if r.detail.endswith("the bake time is over")] == [False, False]
