"""The command target and the remote-target base, in process, with real commands.

The "tool" here is a folder the commands write to (``tool/value`` and ``tool/label``), so each
rule of :mod:`lastgood.targets.remote` and :mod:`lastgood.targets._process` is checked on its
own: label matching, read-back, retries, timeouts that stop a whole process group, masking,
the option checks made when ``lastgood.toml`` is read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from lastgood import config
from lastgood.bundle import Bundle
from lastgood.errors import ConfigError, DamagedCopyError, TargetError
from lastgood.targets import Release, _process, target_class
from lastgood.targets.base import UNKNOWN
from lastgood.targets.command import CommandTarget, parse_options
from lastgood.targets.remote import match_label

PUSH = (
    'cp "$LASTGOOD_PATH/value.txt" ../tool/value'
    ' && printf "%s\\n" "$LASTGOOD_VERSION" > ../tool/label'
)
LIVE = "cat ../tool/label 2>/dev/null || true"
FETCH = 'cp ../tool/value "$LASTGOOD_PATH/value.txt"'


def release_of(number: int, value: str) -> tuple[Release, dict[str, bytes]]:
    files = {"value.txt": f"{value}\n".encode()}
    return Release(number, Bundle(files).content_hash), files


def make(tmp_path: Path, **options: Any) -> CommandTarget:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "tool").mkdir(exist_ok=True)
    merged = {"activate": PUSH, "live": LIVE, "timeout": "5s", **options}
    return CommandTarget("prod", merged, tmp_path / "ws")


def test_it_is_a_built_in_type() -> None:
    assert target_class("command") is CommandTarget


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("v1", 1),
        ("  v2\n", 2),
        ('"v2"', 2),
        ("v3", None),  # not kept here
        ("v1-{h1}", 1),
        ("v1-{h2}", None),  # the number and the hash disagree
        ("{h2}", 2),
        ("{h2_8}", 2),
        ("abc", None),
        ("", None),
        ("published-by-hand", None),
    ],
)
def test_labels_map_to_kept_releases(line: str, expected: int | None) -> None:
    one, _ = release_of(1, "one")
    two, _ = release_of(2, "two")
    text = line.format(h1=one.content_hash[:8], h2=two.content_hash, h2_8=two.content_hash[:8])
    found = match_label(text, [one, two])
    assert (found.version if found else None) == expected


def test_activate_pushes_reads_back_and_records(tmp_path: Path) -> None:
    target = make(tmp_path)
    one, files = release_of(1, "one")
    assert target.live() is None and target.actual_hash() is None
    target.stage(one, files)
    assert target.retained() == [one] and target.live() is None
    target.activate(one)
    assert (tmp_path / "tool" / "value").read_text() == "one\n"
    assert target.live() == one
    assert target.actual_hash() == one.content_hash
    assert target.recorded() == one
    assert target.state == tmp_path / "ws" / ".lastgood" / "targets" / "prod"


def test_a_push_the_tool_does_not_confirm_fails(tmp_path: Path) -> None:
    target = make(tmp_path, activate="true")
    one, files = release_of(1, "one")
    target.stage(one, files)
    with pytest.raises(TargetError, match="reading it back says nothing"):
        target.activate(one)


def test_a_failed_push_is_retried_only_when_idempotent(tmp_path: Path) -> None:
    count = "n=$(cat ../tries 2>/dev/null || echo 0); echo $((n+1)) > ../tries"
    flaky = f'{count}; [ "$n" -ge 1 ] && {PUSH}'
    target = make(tmp_path, activate=flaky, idempotent=True)
    one, files = release_of(1, "one")
    target.stage(one, files)
    target.activate(one)  # the first push fails, the second works
    assert (tmp_path / "tries").read_text().strip() == "2"
    assert target.live() == one

    (tmp_path / "tries").unlink()
    strict = make(tmp_path, activate=flaky)
    two, files = release_of(2, "two")
    strict.stage(two, files)
    with pytest.raises(TargetError, match="not retried") as caught:
        strict.activate(two)
    assert "exited 1" in caught.value.message
    assert (tmp_path / "tries").read_text().strip() == "1"


def test_a_foreign_label_is_unknown_and_keeps_what_lastgood_put_there(tmp_path: Path) -> None:
    target = make(tmp_path)
    one, files = release_of(1, "one")
    target.stage(one, files)
    target.activate(one)
    (tmp_path / "tool" / "label").write_text("edited-in-the-tool\n")
    assert target.live() == one
    actual = target.actual_hash()
    assert actual is not None and actual.startswith(UNKNOWN)
    assert target.repair(one, files) == ["value.txt"]
    assert target.actual_hash() == one.content_hash


def test_fetch_sees_a_value_edited_under_the_same_label(tmp_path: Path) -> None:
    target = make(tmp_path, fetch=FETCH)
    one, files = release_of(1, "one")
    target.stage(one, files)
    target.activate(one)
    assert target.actual_hash() == one.content_hash
    (tmp_path / "tool" / "value").write_text("edited\n")
    assert target.actual_hash() not in (None, one.content_hash)
    live = target.live_path()
    assert live is not None and (live / "value.txt").read_text() == "edited\n"
    assert target.repair(one, files) == ["value.txt"]
    assert target.actual_hash() == one.content_hash


def test_recover_records_a_push_nobody_recorded(tmp_path: Path) -> None:
    target = make(tmp_path)
    one, files = release_of(1, "one")
    two, files_two = release_of(2, "two")
    target.stage(one, files)
    target.activate(one)
    target.stage(two, files_two)
    target.push(two, target.store.release_path(two.name))  # as a process killed right after
    assert target.recorded() == one and target.live() == two
    note = target.recover()
    assert note is not None and "v2" in note
    assert target.recorded() == two
    assert target.recover() is None


def test_previous_prune_and_verdicts_use_the_kept_copies(tmp_path: Path) -> None:
    target = make(tmp_path)
    releases = [release_of(n, f"value {n}") for n in (1, 2, 3)]
    for release, files in releases:
        target.stage(release, files)
        target.activate(release)
        target.record_verdict(release, "good")
    assert target.previous() == releases[1][0]
    assert target.verdict(releases[0][0]) == "good"
    dropped = target.prune(1, [releases[0][0]])
    assert dropped == [releases[1][0]]
    assert target.retained() == [releases[0][0], releases[2][0]]


def test_a_damaged_kept_copy_is_never_pushed(tmp_path: Path) -> None:
    target = make(tmp_path)
    one, files = release_of(1, "one")
    target.stage(one, files)
    (target.store.release_path(one.name) / "value.txt").write_text("tampered\n")
    with pytest.raises(DamagedCopyError, match="kept copy of v1"):
        target.activate(one)
    target.stage(one, files)  # staging again mends it from the store's bytes
    target.activate(one)
    assert (tmp_path / "tool" / "value").read_text() == "one\n"


def test_a_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    target = make(tmp_path, live=f"sleep 60 & echo $! > {pid_file}; wait", timeout="0.5s")
    with pytest.raises(TargetError, match=r"the live command of prod .* no answer within 0.5 s"):
        target.live()
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the command's child outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_a_command_that_cannot_start_says_so(tmp_path: Path) -> None:
    target = make(tmp_path, live=["/nonexistent/tool-cli", "version"])
    with pytest.raises(TargetError, match="could not start"):
        target.live()


def test_secret_values_are_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_API_TOKEN", "tok-123456789")
    monkeypatch.setenv("LASTGOOD_AUTHOR", "alice")
    target = make(tmp_path, live='echo "token is $CRM_API_TOKEN by $LASTGOOD_AUTHOR" >&2; exit 4')
    with pytest.raises(TargetError) as caught:
        target.live()
    assert "token is *** by alice" in caught.value.message
    assert "tok-123456789" not in caught.value.message
    assert _process.mask("a tok-123456789 b", ["tok-123456789"]) == "a *** b"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"activate": "x"}, "has no live command"),
        ({"live": "x"}, "has no activate command"),
        ({"activate": "x", "live": "x", "activte": "y"}, "did you mean"),
        ({"activate": "", "live": "x"}, "must be a command line"),
        ({"activate": ["a", 1], "live": "x"}, "must be a command line"),
        ({"activate": "x", "live": "x", "timeout": "soon"}, "is not a duration"),
        ({"activate": "x", "live": "x", "timeout": 0}, "must be more than 0"),
        ({"activate": "x", "live": "x", "idempotent": "yes"}, "must be true or false"),
        ({"activate": "x", "live": "x", "keep": 0}, "keep must be"),
        ({"activate": "x", "live": "x", "state": 3}, "must be a folder path"),
    ],
)
def test_options_are_checked(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(options, "env.prod.target")
    assert problem in caught.value.message + (caught.value.hint or "")


def test_options_are_checked_when_the_config_is_read(tmp_path: Path) -> None:
    data = {"env": {"prod": {"target": {"type": "command", "activate": "x", "lvie": "y"}}}}
    with pytest.raises(ConfigError) as caught:
        config.parse(data, tmp_path)
    assert "env.prod.target.lvie" in caught.value.message
    assert caught.value.hint == "did you mean env.prod.target.live?"


def test_an_argv_command_runs_without_a_shell(tmp_path: Path) -> None:
    target = make(tmp_path, live=["printf", "%s", "$NOT_EXPANDED"])
    assert target.read().output == "$NOT_EXPANDED"


def test_a_failed_stage_command_keeps_nothing(tmp_path: Path) -> None:
    target = make(tmp_path, stage='echo "schema says no" >&2; exit 9')
    one, files = release_of(1, "one")
    with pytest.raises(TargetError, match=r"the stage command of prod .* exited 9; stderr: schema"):
        target.stage(one, files)
    assert target.retained() == []
    assert not (tmp_path / "tool" / "value").exists()


def test_the_stage_command_runs_once_per_release(tmp_path: Path) -> None:
    target = make(tmp_path, stage='echo "$LASTGOOD_RELEASE" >> ../staged')
    one, files = release_of(1, "one")
    target.stage(one, files)
    target.stage(one, files)
    assert (tmp_path / "staged").read_text() == f"{one.name}\n"
    assert target.holds(one)
    (target.store.release_path(one.name) / "value.txt").write_text("tampered\n")
    assert not target.holds(one)  # a rollback then stages it again from the store


def test_a_version_kept_on_another_machine_is_known_by_its_number(tmp_path: Path) -> None:
    here = make(tmp_path)
    there = CommandTarget("prod", {"activate": PUSH, "live": LIVE}, tmp_path / "ws")
    there.state = tmp_path / "elsewhere"
    there.store = type(there.store)(there.state)
    one, files_one = release_of(1, "one")
    two, files_two = release_of(2, "two")
    here.stage(one, files_one)
    here.activate(one)
    there.stage(two, files_two)
    there.activate(two)
    live = here.live()
    assert live is not None and (live.version, live.content_hash) == (2, "")
    assert here.actual_hash() == ""  # nothing here to compare with: not drift, not verified
    assert here.recover() is None and here.recorded() == one
    assert here.repair(two, files_two) == ["value.txt"]  # kept here from the store's files
    assert here.live() == two and here.retained() == [one, two]


def test_a_state_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        make(tmp_path, state="../not-a-folder")
