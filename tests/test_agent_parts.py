"""The agent's parts in process: placing a version on real directory and files targets, the
host workspace, the ``[agent]`` table, the server's registry of agent reports and the fleet
standing. (Real agent processes against a real server: tests/test_agent.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from lastgood import config as config_module
from lastgood.agent.hostspace import AgentRequest, parse_target, plan_agent, write_hostspace
from lastgood.agent.placing import place
from lastgood.client import content_hash_of
from lastgood.errors import ConfigError, UsageError
from lastgood.operations.fleet import standing
from lastgood.rows import Consumer
from lastgood.server.consumers import parse_health
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget
from lastgood.targets.files import FilesTarget
from tests.conftest import LASTGOOD
from tests.http_fakes import POLL

DOCS = Path(__file__).resolve().parent.parent / "docs"


def version(number: int) -> tuple[int, str, dict[str, bytes]]:
    files = {"conf/app.yaml": f"marker: {number}\n".encode(), "health.txt": b"ok\n"}
    return number, content_hash_of(files), files


@pytest.mark.parametrize("kind", ["directory", "files"])
def test_place_stages_then_switches_retained_releases_and_keeps_what_is_live(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    target = (DirectoryTarget if kind == "directory" else FilesTarget)(
        "prod", {"path": str(folder)}, tmp_path
    )
    first, second = version(1), version(2)
    assert place(target, *first, keep=10).action == "staged"
    done = place(target, *second, keep=10)
    assert done.action == "staged" and done.live == Release(2, second[1])
    assert re.fullmatch(rf"v2 live on {kind} {folder} in \S+ m?s, verified \(staged and "
                        r"switched\)", done.message), done.message  # fmt: skip
    back = place(target, *first, keep=10)
    assert back.action == "switched" and "a pointer switch to the retained release" in back.message
    assert target.actual_hash() == first[1]
    assert place(target, *first, keep=10).action == "kept"


def test_place_refuses_a_release_withdrawn_on_the_host_and_repairs_a_hand_edit(
    tmp_path: Path,
) -> None:
    target = DirectoryTarget("prod", {"path": str(tmp_path / "live")}, tmp_path)
    first, second = version(1), version(2)
    place(target, *first, keep=10)
    place(target, *second, keep=10)
    target.activate(Release(1, first[1]))
    target.record_verdict(Release(2, second[1]), "withdrawn")
    refused = place(target, *second, keep=10)
    assert refused.action == "refused" and refused.live == Release(1, first[1])
    assert refused.message.startswith("v2 is withdrawn on this host")
    assert "keeps v1, until the server serves another version" in refused.message
    (tmp_path / "live" / "current" / "health.txt").write_text("edited by hand\n")
    kept = place(target, *first, keep=10)
    assert kept.action == "kept" and target.actual_hash() == first[1]
    taken = place(target, *second, keep=10, honour_verdicts=False)  # --take-withdrawn
    assert taken.action == "switched" and target.live() == Release(2, second[1])


def test_place_prunes_to_keep_but_never_the_live_one_or_the_way_back(tmp_path: Path) -> None:
    target = DirectoryTarget("prod", {"path": str(tmp_path / "live")}, tmp_path)
    for number in range(1, 6):
        place(target, *version(number), keep=2)
        live = target.live()
        assert live is not None
        target.record_verdict(live, "good")
    assert [r.version for r in target.retained()] == [4, 5]


def test_target_syntax_and_the_host_workspace(tmp_path: Path) -> None:
    assert parse_target("directory:/srv/app", keep=3) == {
        "type": "directory", "path": "/srv/app", "keep": 3
    }  # fmt: skip
    for bad, words in (("/srv/app", "is not TYPE:PATH"), ("directory:", "is not TYPE:PATH"),
                       ("served:/x", "not 'served'")):  # fmt: skip
        with pytest.raises(UsageError, match=words) as caught:
            parse_target(bad)
        assert caught.value.exit_code == 2 and "directory:/srv/app/config" in str(caught.value.hint)
    state = tmp_path / "state"
    table = parse_target(f"directory:{tmp_path / 'live'}")
    write_hostspace(state, "prod", ["http://127.0.0.1:1"], table)
    written = config_module.load(state)
    assert written.agent.env == "prod" and written.agent.servers == ("http://127.0.0.1:1",)
    (state / "lastgood.toml").write_text((state / "lastgood.toml").read_text() + "# mine\n")
    write_hostspace(state, "prod", ["http://127.0.0.1:1"], table)  # the same: left as it is
    assert (state / "lastgood.toml").read_text().endswith("# mine\n")
    with pytest.raises(UsageError, match="host workspace of another environment or target"):
        write_hostspace(state, "prod", ["http://127.0.0.1:1"], parse_target("directory:/other"))


def test_plan_agent_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text(
        '[env.a]\ntarget = { type = "directory", path = "../a" }\n'
        '[env.b]\ntarget = { type = "served" }\n'
    )
    with pytest.raises(UsageError, match="which environment should this agent follow"):
        plan_agent(AgentRequest(root=tmp_path, servers=("http://127.0.0.1:1",)))
    with pytest.raises(ConfigError, match="is the served target"):
        plan_agent(AgentRequest(root=tmp_path, env="b", servers=("http://127.0.0.1:1",)))
    with pytest.raises(UsageError, match="no server to follow for a"):
        plan_agent(AgentRequest(root=tmp_path, env="a"))
    with pytest.raises(UsageError, match="is not an http:// or https:// URL"):
        plan_agent(AgentRequest(root=tmp_path, env="a", servers=("ftp://x",)))
    plan = plan_agent(AgentRequest(root=tmp_path, env="a", fallback="http://127.0.0.1:1"))
    assert plan.server == "http://127.0.0.1:1" and plan.consumer_id.startswith("agent-")
    again = plan_agent(AgentRequest(root=tmp_path, env="a", fallback="http://127.0.0.1:1"))
    assert again.consumer_id == plan.consumer_id  # a restarted agent is the same consumer


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ("server = 3", "must be a URL or a list of URLs"),
        ('server = "nope"', "is not an http:// or https:// URL"),
        ('env = "c"', "names no [env.*] table"),
        ('check_every = "0s"', "must be more than 0"),
        ('servr = "x"', "servr"),
    ],
)
def test_the_agent_table_refuses_bad_values(tmp_path: Path, table: str, words: str) -> None:
    data = tomllib.loads(f'[agent]\n{table}\n[env.a]\ntarget = {{ type = "served" }}\n')
    with pytest.raises(ConfigError) as caught:
        config_module.parse(data, tmp_path)
    assert words in str(caught.value)


def test_the_fleet_counts_agents_and_names_failing_hosts() -> None:
    now = time.time()

    def consumer(name: str, kind: str, health: str | None = None) -> Consumer:
        return Consumer(env="prod", consumer_id=name, name=name, version=6, content_hash="h",
                        since=now, seen_at=now, kind=kind, health=health,
                        detail="app-answers: exit 1" if health == "failing" else None)  # fmt: skip

    fleet = standing("prod", [consumer("api-1", "sdk"), consumer("web-1", "agent", "ok"),
                              consumer("web-2", "agent", "failing")],
                     version=6, change=None, now=now)  # fmt: skip
    assert fleet.agents == 2 and fleet.failing == ["web-2: app-answers: exit 1"]
    assert fleet.summary == "v6 live on 3/3 consumers (2 agents); 1 host check failing: web-2"
    assert parse_health("failing: web: 502") == ("failing", "web: 502")
    assert parse_health(None) == parse_health("none") == (None, None)
    with pytest.raises(UsageError, match="must be 'ok' or 'failing: WHAT'"):
        parse_health("sick")


def test_the_docs_examples_parse_and_the_unit_runs_a_real_command(tmp_path: Path) -> None:
    text = (DOCS / "agents.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    for block in blocks:
        config_module.parse(tomllib.loads(block), tmp_path)
    unit = (DOCS / "examples" / "lastgood-agent.service").read_text()
    command = re.search(r"^ExecStart=\S+ (agent .*)$", unit, re.M)
    assert command is not None and command.group(1) in text  # the page shows the shipped unit
    options = set(re.findall(r"(--[a-z-]+)", command.group(1)))
    shown = subprocess.run([LASTGOOD, "agent", "--help"], capture_output=True, text=True,
                           timeout=60).stdout  # fmt: skip
    assert options and all(option in shown for option in options)


def test_agent_reports_keep_their_kind_and_health_through_the_store(store_url: str) -> None:
    """An agent's kind and host health survive the flush and a second server's read (SQLite
    and PostgreSQL); a long-poll ending unchanged only renews the time, keeping a newer health
    sent meanwhile; a kind the server does not know is refused."""
    from lastgood.server.consumers import Consumers
    from lastgood.store import open_store

    store = open_store(store_url)
    try:
        registry = Consumers(store)
        registry.report("prod", "agent-1", name="web-2", version=6, content_hash="h",
                        kind="agent", health=("failing", "app-answers: exit 1"))  # fmt: skip
        assert registry.touch("prod", "agent-1") and not registry.touch("prod", "nobody")
        assert registry.flush() == 1
        other = Consumers(store)
        (found,) = other.of("prod")
        assert (found.kind, found.health, found.detail) == (
            "agent", "failing", "app-answers: exit 1"
        )  # fmt: skip
        with pytest.raises(UsageError, match="a consumer kind must be one of sdk, agent"):
            registry.report("prod", "x", name="x", version=1, content_hash=None, kind="robot")
    finally:
        store.close()


def test_plan_checks_every_value_before_writing_the_host_workspace(tmp_path: Path) -> None:
    """A typo in --server or --target is refused (exit 2, naming the option) and writes
    nothing, so a corrected start is never blocked by it."""
    state, live = tmp_path / "state", tmp_path / "live"
    good = {"env": "prod", "state": state, "target": f"directory:{live}"}
    cases = [
        ({"servers": ("ftp://x",)}, "--server 'ftp://x' is not an http", "http(s)://host"),
        ({"servers": ("localhost:18470",)}, "--server 'localhost:18470'",
         "write http://localhost:18470"),
        ({"fallback": "ftp://y"}, "LASTGOOD_SERVER 'ftp://y'", "http(s)://host"),
    ]  # fmt: skip
    for override, words, hint in cases:
        request = AgentRequest(**{**good, "servers": ("http://127.0.0.1:1",), **override})
        if "fallback" in override:
            request = AgentRequest(**{**good, **override})
        with pytest.raises(UsageError) as caught:
            plan_agent(request)
        assert words in caught.value.message and hint in str(caught.value.hint)
    (tmp_path / "a-file").write_text("x\n")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "app.conf").write_text("x\n")
    targets = [
        (f"directory:{tmp_path / 'a-file'}", "is a file, not a folder"),
        (f"directory:{tmp_path / 'theirs'}", "is a non-empty folder that is not a lastgood"),
        (f"files:{tmp_path / 'missing'}", "does not exist: a files target writes into"),
    ]
    for target, words in targets:
        request = AgentRequest(**{**good, "target": target, "servers": ("http://127.0.0.1:1",)})
        with pytest.raises(UsageError, match=words) as caught:
            plan_agent(request)
        assert caught.value.exit_code == 2 and "lastgood.toml" not in str(caught.value.hint)
    assert not state.exists() and not live.exists()


def test_server_on_the_command_line_corrects_the_host_workspace(tmp_path: Path) -> None:
    """A host workspace that kept a bad server (written by an older agent) does not block a
    start with a corrected --server: the line is rewritten, checks added there are kept."""
    state, live = tmp_path / "state", tmp_path / "live"
    table = parse_target(f"directory:{live}")
    write_hostspace(state, "prod", ["ftp://typo"], table)
    checks = '\n[[env.prod.check]]\nname = "up"\ntype = "command"\nrun = "true"\n'
    (state / "lastgood.toml").write_text((state / "lastgood.toml").read_text() + checks)
    with pytest.raises(ConfigError, match=r"agent\.server in"):  # from the file: it says so
        plan_agent(AgentRequest(root=state))
    request = AgentRequest(env="prod", state=state, target=f"directory:{live}",
                           servers=("http://127.0.0.1:2",))  # fmt: skip
    plan = plan_agent(request)
    assert plan.servers == ("http://127.0.0.1:2",)
    text = (state / "lastgood.toml").read_text()
    assert 'server = "http://127.0.0.1:2"' in text and "ftp://typo" not in text
    assert text.endswith(checks)
    moved = plan_agent(AgentRequest(root=state, servers=("http://a:1", "http://b:1")))
    assert moved.servers == ("http://a:1", "http://b:1")
    assert config_module.load(state).agent.servers == ("http://a:1", "http://b:1")
    assert plan.name.endswith(f":{live}") and plan.target_where == "--target"
    with pytest.raises(UsageError, match=r"is not a host workspace: it has no lastgood\.toml"):
        plan_agent(AgentRequest(root=tmp_path / "nowhere"))


def test_one_agent_per_target_the_lock_names_the_holder(tmp_path: Path) -> None:
    import os

    from lastgood.agent.guard import AgentLock, lock_folders

    target = DirectoryTarget("prod", {"path": str(tmp_path / "live")}, tmp_path)
    first, second = AgentLock(), AgentLock()
    first.take(lock_folders(target, tmp_path / "state"))
    with pytest.raises(UsageError) as caught:
        second.take(lock_folders(target, tmp_path / "other-state"))
    message = caught.value.message
    assert f"(pid {os.getpid()}) already works on directory {tmp_path / 'live'}" in message
    first.release()
    second.take(lock_folders(target, tmp_path / "other-state"))  # free again
    second.release()
    assert place(target, *version(1), keep=2).action == "staged"  # the lock did not get in the way


def test_host_check_detail_travels_through_the_header_intact() -> None:
    from lastgood.client.channel import Channel

    channel = Channel("http://127.0.0.1:1", "prod", token=None, consumer_id="c", name="n",
                      timeout=1.0, verify=None, kind="agent")  # fmt: skip
    try:
        channel.set_health("failing", "app: 502 → 100% down\nnext")
        line = channel._health
        assert line.isascii() and line.count("\r\n") == 1
        value = line.removeprefix("X-Lastgood-Health: ").removesuffix("\r\n")
        assert parse_health(value) == ("failing", "app: 502 → 100% down next")
    finally:
        channel.close()


def test_an_unreachable_server_is_said_in_words(tmp_path: Path) -> None:
    import http.server
    import threading

    from lastgood.client.channel import Channel
    from lastgood.errors import ServerError

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    try:
        for url, words, hint in (
            (f"https://127.0.0.1:{port}", "does not speak TLS", f"write http://127.0.0.1:{port}"),
            ("http://127.0.0.1:1", "nothing answers on that port (connection refused)", "running"),
        ):
            channel = Channel(url, "prod", token=None, consumer_id="c", name="n", timeout=2.0,
                              verify=None, kind="agent")  # fmt: skip
            with pytest.raises(ServerError) as caught:
                channel.fetch(serving="none", etag=None, wait=0)
            channel.close()
            assert words in caught.value.message and hint in str(caught.value.hint)
            assert "Errno" not in caught.value.message and "SSLError" not in caught.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_a_consumer_that_leaves_is_gone_at_once_until_it_reports_again(tmp_path: Path) -> None:
    """An agent stopping cleanly says so: it drops out of the fleet (on this server and, once
    flushed, every server on the store), and the long-poll it held ending later does not
    bring it back; its next report does."""
    from lastgood.server.consumers import Consumers
    from lastgood.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        registry = Consumers(store)
        registry.report("prod", "agent-1", name="web-1", version=6, content_hash="h", kind="agent")
        assert registry.flush() == 1
        registry.read_shared()
        assert registry.leave("prod", "agent-1") and not registry.leave("prod", "nobody")
        assert registry.touch("prod", "agent-1")  # its held long-poll ends: still gone
        registry.flush()
        for seen in (registry, Consumers(store)):
            fleet = standing("prod", seen.of("prod"), version=6, change=None)
            assert fleet.total == 0 and fleet.gone == 1, seen
        registry.report("prod", "agent-1", name="web-1", version=6, content_hash="h", kind="agent")
        assert standing("prod", registry.of("prod"), version=6, change=None).total == 1
    finally:
        store.close()


def test_commands_that_need_the_store_refuse_a_host_workspace(tmp_path: Path) -> None:
    """The host workspace has no store: status, history and an online rollback are refused
    with the way that works (offline here, or the server), and create nothing there."""
    import os

    state = tmp_path / "state"
    write_hostspace(state, "prod", ["http://127.0.0.1:1"],
                    parse_target(f"directory:{tmp_path / 'live'}"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("LASTGOOD_STORE", "LASTGOOD_SERVER")}
    for args in (["status"], ["history", "prod"], ["rollback", "prod"]):
        done = subprocess.run([LASTGOOD, "-C", str(state), *args], capture_output=True,
                              text=True, timeout=60, env=env)  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert f"{state} is lastgood agent's host workspace" in done.stderr
        assert f"'lastgood -C {state} rollback prod --offline'" in done.stderr
        assert "(--server URL)" in done.stderr and "Traceback" not in done.stderr
    assert not (state / ".lastgood").exists()
    offline = subprocess.run([LASTGOOD, "-C", str(state), "rollback", "prod", "--offline"],
                             capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert offline.returncode == 2 and "roll back on the server" in offline.stderr
    assert "--to REF" not in offline.stderr


def test_a_placement_that_fails_unexpectedly_is_one_line_and_the_fleet_gets_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An OSError inside the target (here a file where meta/ must be) reaches the log as
    its reason, not a traceback; the follower gets a LastgoodError to retry on, and the next
    report carries the reason to the fleet."""
    import logging

    from lastgood.agent.follow import HostConfig
    from lastgood.agent.runner import Agent
    from lastgood.client import Snapshot
    from lastgood.errors import TargetError

    state, live = tmp_path / "state", tmp_path / "live"
    request = AgentRequest(env="prod", state=state, target=f"directory:{live}",
                           servers=("http://127.0.0.1:1",))  # fmt: skip
    agent = Agent(plan_agent(request), token=None)
    agent.follower = HostConfig("http://127.0.0.1:1", "prod", placer=agent._place,
                                serving="none", poll=60.0, require=False)  # fmt: skip
    try:
        (live / "releases").mkdir(parents=True)
        (live / "meta").write_text("not a folder\n")
        number, content_hash, files = version(1)
        with caplog.at_level(logging.INFO, "lastgood.agent"), pytest.raises(TargetError):
            agent._place(Snapshot(number, content_hash, files, received_at=time.time()))
        (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.getMessage().startswith(f"could not put v1 live on directory {live}: ")
        assert "Not a directory" in record.getMessage() and record.exc_info is None
        live.joinpath("meta").unlink()
        live.joinpath("releases").rmdir()
        live.joinpath("app.conf").write_text("theirs\n")  # someone else's folder now
        with pytest.raises(TargetError):
            agent._place(Snapshot(number, content_hash, files, received_at=time.time()))
        assert "point --target at a new or empty folder" in caplog.records[-1].getMessage()
        health = agent.follower._channels[0]._health
        assert health.startswith("X-Lastgood-Health: failing: could not put v1 live on ")
    finally:
        agent.follower.close()


def test_the_agent_log_is_one_line_per_event_tracebacks_only_with_verbose() -> None:
    import logging

    from lastgood.agent.runner import _Lines

    try:
        raise OSError(39, "Directory not empty", "/srv/app/config/releases/.tmp-v8")
    except OSError:
        record = logging.LogRecord("lastgood.client", logging.ERROR, __file__, 1,
                                   "unexpected error following %s", ("prod",),
                                   sys.exc_info())  # fmt: skip
    line = _Lines().format(record)
    assert line == ("error: unexpected error following prod: Directory not empty "
                    "(/srv/app/config/releases/.tmp-v8)")  # fmt: skip
    assert "Traceback" in _Lines(tracebacks=True).format(record)
