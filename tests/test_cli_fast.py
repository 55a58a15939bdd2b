"""The click-free rollback lane reads command lines exactly as click does, or not at all."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from lastgood.cli import commands, group  # noqa: F401  (registers the commands)
from lastgood.cli.fast import parse

ACCEPTED = [
    ["rollback", "production"],
    ["rollback", "production", "--to", "v12"],
    ["rollback", "--to", "staging:last-good", "production"],
    ["rollback", "production", "-m", "scores dropped", "--force", "--json"],
    ["rollback", "production", "--message", "store down", "--offline"],
    ["-C", "/srv/ops", "--store", "postgresql://db/x", "rollback", "prod"],
    ["--author", "dana", "-C", "ws", "rollback", "prod", "--to", "3f2a9c1d"],
]
REFUSED = [
    ["rollback"],
    ["rollback", "--help"],
    ["rollback", "prod", "extra"],
    ["rollback", "prod", "--to"],
    ["rollback", "prod", "--to=v3"],
    ["rollback", "prod", "-m", "-5 points"],
    ["rollback", "prod", "--unknown"],
    ["--version"],
    ["deploy", "prod"],
    ["-C", "rollback"],
    [],
]


def split_at_command(argv: list[str]) -> tuple[list[str], list[str]]:
    index = argv.index("rollback")
    return argv[:index], argv[index:]


def click_reading(argv: list[str]) -> dict[str, object]:
    """What click makes of ``argv``: the group's options and the rollback command's."""
    global_options, command_words = split_at_command(argv)
    with group.cli.make_context("lastgood", [*global_options, "rollback"]) as ctx:
        name, command, rest = group.cli.resolve_command(ctx, command_words)
        assert name == "rollback" and command is not None
        with command.make_context(name, rest, parent=ctx) as sub:
            return {**ctx.params, **sub.params}


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_fast_lane_reads_like_click(argv: list[str]) -> None:
    line = parse(argv)
    assert line is not None
    fast = {**line.options, **line.flags, "env": line.env}
    assert fast == click_reading(argv)


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a) or "(nothing)")
def test_everything_else_goes_to_click(argv: list[str]) -> None:
    assert parse(argv) is None


def test_help_comes_from_click() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lastgood", "rollback", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "Example:" in result.stdout


def test_fast_lane_does_not_import_click_or_sqlalchemy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    probe = (
        "import sys; from lastgood.cli import fast; "
        "import lastgood.operations.rollback, lastgood.store.lite; "
        "print(sorted(m for m in ('click', 'sqlalchemy', 'rich', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
    assert isinstance(group.cli, click.Group)


LANE_NEVER_IMPORTS = (
    "click", "sqlalchemy", "alembic", "rich", "httpx", "shutil", "dataclasses", "lastgood.gitrepo"
)  # fmt: skip


def test_a_real_rollback_imports_none_of_the_heavy_modules(workspace) -> None:  # type: ignore[no-untyped-def]
    """What a whole ``lastgood rollback`` process loads, from the interpreter's own import log:
    each of these costs a rollback milliseconds it does not need."""
    ws = workspace()
    ws.healthy("one")
    assert ws.run("deploy", "staging").returncode == 0
    ws.healthy("two")
    assert ws.run("deploy", "staging").returncode == 0

    done = ws.run("rollback", "staging", env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert done.returncode == 0, done.stderr
    assert "restored v1 on staging" in done.stdout
    loaded = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if "import time:" in line
    }
    assert "lastgood.operations.rollback" in loaded
    assert sorted(loaded.intersection(LANE_NEVER_IMPORTS)) == []


def test_every_command_module_registers_what_the_lazy_group_names() -> None:
    """The lazy group finds a command only through LAZY_COMMANDS: a command added to a module
    without its line there would be missing from ``lastgood --help`` and unrunnable."""
    import importlib
    import pkgutil

    import lastgood.cli

    for module in pkgutil.iter_modules(lastgood.cli.__path__):
        importlib.import_module(f"lastgood.cli.{module.name}")
    for name, command in group.cli.commands.items():
        module = group.LAZY_COMMANDS.get(name, "commands")
        assert command.callback is not None
        assert command.callback.__module__ == f"lastgood.cli.{module}", name
    assert set(group.LAZY_COMMANDS) <= set(group.cli.commands)


# comparative checks and server addresses load only for a config that has them
CLICK_COMMANDS_NEVER_IMPORT = ("lastgood.cli.request_cmd", "lastgood.cli.request_listing",
                               "lastgood.cli.request_proposal", "lastgood.cli.request_step",
                               "lastgood.cli.request_view", "lastgood.server", "jsonschema", "yaml",
                               "lastgood.comparison", "lastgood.address")  # fmt: skip


def test_an_everyday_command_loads_only_what_it_uses(workspace) -> None:  # type: ignore[no-untyped-def]
    """``lastgood log`` goes through click but loads neither the other commands' modules nor
    the validators: each costs every command tens of milliseconds."""
    ws = workspace()
    ws.healthy("one")
    assert ws.run("snapshot", "-m", "one").returncode == 0

    done = ws.run("log", env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert done.returncode == 0 and "v1" in done.stdout, done.stderr
    loaded = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if "import time:" in line
    }
    assert "click" in loaded
    assert sorted(loaded.intersection(CLICK_COMMANDS_NEVER_IMPORT)) == []
