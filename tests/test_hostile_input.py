"""Hostile input through the real CLI: every case ends in a clear error or the exact answer,
never a Python error, and changes nothing. The workspaces judge a version in one round (FAST):
no case here is about the bake, and most deploy first."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import FAST, LASTGOOD, Workspace

Factory = Callable[..., Workspace]
HUGE = "v99999999999999999999999"


@pytest.fixture
def ws(workspace: Factory) -> Workspace:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    return ws


@pytest.mark.parametrize(
    "args",
    [
        ("show", HUGE),
        ("diff", HUGE, "v1"),
        ("deploy", "staging", "--version", HUGE),
        ("rollback", "staging", "--to", HUGE),
    ],
    ids=["show", "diff", "deploy", "rollback"],
)
def test_a_version_number_too_large_for_any_store_names_nothing(
    ws: Workspace, args: tuple[str, ...]
) -> None:
    done = ws.run(*args)
    assert done.returncode == 2, done.stderr
    assert f"no version {HUGE}" in done.stderr
    assert "unexpected error" not in done.stderr and "Overflow" not in done.stderr


@pytest.mark.parametrize("number", ["99999999999999999999999", "v2147483648", "2147483648"])
def test_numbers_past_what_the_store_holds_name_nothing_on_every_store(
    workspace: Factory, store_url: str, number: str
) -> None:
    ws = workspace(store=store_url, **FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    for args in (("show", number), ("deploy", "staging", "--version", number)):
        done = ws.run(*args)
        assert done.returncode == 2, done.stderr
        assert "never get that large" in done.stderr, done.stderr


def test_a_file_name_that_is_not_utf8_is_refused_by_name(ws: Workspace) -> None:
    os.makedirs(ws.root / "prompts", exist_ok=True)
    with open(os.path.join(os.fsencode(ws.root / "prompts"), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"latin-1 named\n")
    done = ws.run("snapshot", "-m", "bad name")
    assert done.returncode == 5, done.stderr
    assert "prompts/caf\ufffd.txt" in done.stderr and "not valid UTF-8" in done.stderr
    assert "unexpected error" not in done.stderr
    assert ws.run("log", "--json").stdout.count('"number"') == 1


def test_every_data_file_is_listed_in_one_error(ws: Workspace) -> None:
    ws.write("exports/leads.csv", "id,score\n")
    ws.write("exports/backup.sqlite", "SQLite format 3\n")
    done = ws.run("snapshot", "-m", "with data")
    assert done.returncode == 5, done.stderr
    assert "2 files cannot be versioned" in done.stderr
    assert "exports/leads.csv looks like raw data" in done.stderr
    assert "exports/backup.sqlite looks like raw data" in done.stderr


def test_show_writes_the_exact_bytes_of_a_binary_file(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    payload = bytes(range(256)) + b"\x00\xff no newline at the end"
    (ws.root / "logo.bin").write_bytes(payload)
    assert ws.run("snapshot", "-m", "binary").returncode == 0
    command = [LASTGOOD, "-C", str(ws.root), "show", "v1", "logo.bin"]
    done = subprocess.run(command, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload
    text = subprocess.run(
        [LASTGOOD, "-C", str(ws.root), "show", "v1", "health.txt"], capture_output=True, timeout=60
    )
    assert text.stdout == b"ok\n"


def test_a_mistyped_environment_gets_a_did_you_mean(ws: Workspace) -> None:
    done = ws.run("status", "stagign")
    assert done.returncode == 2
    assert "no environment named 'stagign'" in done.stderr
    assert "did you mean 'staging'?" in done.stderr


def test_diff_without_arguments_says_what_it_compares(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    empty = ws.run("diff")
    assert "comparing nothing (nothing is live on staging yet, and no version is recorded)" in (
        empty.stderr
    )
    assert ws.run("snapshot", "-m", "one").returncode == 0
    ws.healthy("two")
    newest = ws.run("diff")
    assert "comparing v1, the newest version (nothing is live on staging yet)" in newest.stderr
    assert ws.run("deploy", "staging", "--version", "v1").returncode == 0
    live = ws.run("diff")
    assert "comparing v1 (live on staging) with the folder" in live.stderr
    assert "+marker: two" in live.stdout


def test_one_of_a_thing_is_not_plural(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.write("only.txt", "one file\n")
    done = ws.run("snapshot", "-m", "single")
    assert "1 file: single" in done.stdout and "1 files" not in done.stdout
    plan = ws.run("deploy", "staging", "--dry-run")
    assert "1 file, syntax and schemas" in plan.stdout


def test_watch_once_prints_what_the_cycle_saw(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    done = ws.run("watch", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cycle 1 (")
    assert "staging: health ok, drift none" in done.stdout


def test_a_file_name_with_a_newline_is_listed_on_one_line(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.healthy("one")
    (ws.root / "two\nlines.txt").write_text("odd name\n")
    assert ws.run("snapshot", "-m", "odd").returncode == 0
    listing = ws.run("show", "v1").stdout.splitlines()
    assert any(line.endswith("'two\\nlines.txt'") for line in listing), listing
    assert not any(line == "lines.txt" for line in listing)


def test_a_broken_notification_template_never_blocks_a_rollback(workspace: Factory) -> None:
    ws = workspace(**FAST)
    ws.write("notify/pager.j2", "{% if %}\n")
    with open(ws.root / "lastgood.toml", "a") as config:
        config.write(
            '\n[versioning]\nexclude = ["notify/**"]\n'
            '\n[[notify.route]]\nname = "pager"\nto = "json://127.0.0.1:9/hook"\n'
            'template = "notify/pager.j2"\nevents = ["deploy-failed"]\n'
        )
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    offline = ws.run("rollback", "staging", "--offline")
    assert offline.returncode == 0, offline.stderr
    ws.healthy("three")
    assert ws.run("deploy", "staging").returncode == 0
    back = ws.run("rollback", "staging")
    assert back.returncode == 0, back.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("history", "staging", "-n", "99999999999999999999999"),
        ("log", "-n", "9223372036854775808"),
        ("log", "-n", "-5"),
        ("token", "revoke", "2147483648"),
        ("report", "--since", "99999999999999999999999"),
    ],
    ids=["history-n", "log-n", "log-negative", "token-revoke", "report-since"],
)
def test_other_numbers_out_of_range_are_usage_errors(ws: Workspace, args: tuple[str, ...]) -> None:
    done = ws.run(*args)
    assert done.returncode == 2, done.stderr
    assert "unexpected error" not in done.stderr and "Traceback" not in done.stderr


def test_an_offline_rollback_with_nothing_to_go_back_to_says_why(workspace: Factory) -> None:
    ws = workspace(target="files", **FAST)
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    [meta] = (ws.base / "app" / ".lastgood-target" / "meta").glob("v1-*.json")
    meta.write_text("{not json")
    done = ws.run("rollback", "staging", "--offline")
    assert done.returncode == 2, done.stderr
    assert "holds no earlier good release" in done.stderr
    assert "metadata file was damaged" in done.stderr
    assert "unexpected error" not in done.stderr
