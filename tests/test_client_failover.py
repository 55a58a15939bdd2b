"""The SDK given several servers: ``LiveConfig([url_a, url_b], env)`` (or ``"url_a,url_b"``).

Two real ``lastgood serve`` processes on one SQLite store; one is killed while a consumer
follows it, and the consumer keeps following changes through the other at once (not after its
retry backoff), with the other's fleet view showing it. The cache is one file whichever server
answers. No mocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lastgood.client import LiveConfig
from lastgood.client.cache import cache_file
from lastgood.errors import ServerError, UsageError
from tests.conftest import Workspace, eventually
from tests.serving import Server, free_port

STAGING = "/api/v1/envs/staging"


def served(workspace: Callable[..., Workspace]) -> Workspace:
    ws = workspace(target="served")
    for marker in ("one", "two"):
        ws.healthy(marker)
        done = ws.run("deploy", "staging", "-m", marker)
        assert done.returncode == 0, done.stderr
    return ws


def test_a_killed_server_is_left_for_the_other_at_once(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = served(workspace)
    a, b = serve(ws, "--poll", "0.05"), serve(ws, "--poll", "0.05")
    token = a.token("deployer")
    caplog.set_level(logging.WARNING, "lastgood.client")
    # poll=30: a retry after the backoff would take seconds; the switch to b must not wait
    with LiveConfig(f"{a.url},{b.url}", "staging", token=token, cache_dir=tmp_path,
                    name="app-failover", poll=30, wait=20) as app:  # fmt: skip
        assert (app.url, app.version, app.urls) == (a.url, 2, (a.url, b.url))
        a.kill()
        started = time.monotonic()
        with b.client(token) as http:
            done = http.post(f"{STAGING}/rollback", json={"message": "a is down"})
            assert done.status_code == 200, done.text
            app.wait_for_version(1, timeout=5)
            assert time.monotonic() - started < 5
            assert app.url == b.url and app.source == "server"

            def fleet_of_b() -> list[tuple[str, int]]:
                found = http.get(f"{STAGING}/consumers").json()["consumers"]
                return [(c["name"], c["version"]) for c in found]

            assert eventually(lambda: fleet_of_b() == [("app-failover", 1)], 10)
    said = [r.getMessage() for r in caplog.records if "now follows" in r.getMessage()]
    assert said and said[0].endswith(f"staging now follows {b.url}"), said
    assert f"cannot reach the lastgood server at {a.url}" in said[0]


def test_it_sticks_with_the_server_that_answers_and_starts_from_either(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], tmp_path: Path
) -> None:
    ws = served(workspace)
    b = serve(ws, "--poll", "0.05")
    down = f"http://127.0.0.1:{free_port()}"
    token = b.token("viewer")
    with LiveConfig([down, b.url], "staging", token=token, cache_dir=tmp_path, wait=0,
                    poll=0.05) as app:  # fmt: skip
        assert (app.url, app.version, app.source) == (b.url, 2, "server")
        assert app.refresh() is False and app.url == b.url  # stays: the first is not retried
    # one cache file for the pair, in either order: the same as a single URL's for one server
    with LiveConfig([b.url, down], "staging", token=token, cache_dir=tmp_path) as same:
        pair = ",".join(sorted((down, b.url)))
        assert same.cache_path == app.cache_path == cache_file(tmp_path, pair, "staging")
    b.stop()
    with LiveConfig(f"{b.url}, {down}", "staging", token=token, cache_dir=tmp_path,
                    start=False) as cached:  # fmt: skip
        assert (cached.version, cached.source) == (2, "cache")


def test_no_server_answering_names_every_one(tmp_path: Path) -> None:
    first, second = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    with pytest.raises(ServerError) as caught:
        LiveConfig([first, second], "staging", cache_dir=tmp_path, timeout=2)
    message = caught.value.message
    assert message.startswith("none of the 2 lastgood servers answered: cannot reach")
    assert first in message and second in message
    assert "the cache" in message  # and there is nothing cached to serve either
    nothing: str | list[str]
    for nothing in ("", " , ", []):
        with pytest.raises(UsageError, match="needs the URL of a lastgood server"):
            LiveConfig(nothing, "staging", cache=False)
    with pytest.raises(UsageError, match="query"):  # each URL is checked as one alone is
        LiveConfig([first, "http://b:8470/?x=1"], "staging", cache=False)
