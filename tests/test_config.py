"""lastgood.toml parsing: defaults, units, and errors that name the key and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lastgood.config import load, parse
from lastgood.errors import ConfigError
from lastgood.operations.init import TEMPLATE
from lastgood.units import format_duration, parse_duration, parse_size

MINIMAL = '[env.staging]\ntarget = { type = "directory", path = "../live" }\n'


def test_defaults(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(MINIMAL), tmp_path)
    env = cfg.environment("staging")
    assert (env.bake, env.interval, env.failures, env.budget) == (30.0, 3.0, 2, 300.0)
    assert cfg.versioning.max_file_size == 1024 * 1024
    assert cfg.default_environment() == "staging"


def test_init_template_parses(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(TEMPLATE), tmp_path)
    assert set(cfg.environments) == {"staging", "production"}
    assert cfg.environment("production").protected
    assert cfg.default_environment() == "production"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[env.staging]\ntarget = { type = 'directory' }\nbaek = '1s'\n",
            "did you mean env.staging.bake",
        ),
        ("[env.staging]\nbake = '1s'\n", "target is missing"),
        (
            "[env.s]\ntarget = { type = 'directory' }\nbake = 'soon'\n",
            "env.s.bake = 'soon' is not a duration",
        ),
        ("[env.s]\ntarget = { type = 'directory' }\nfailures = 0\n", "failures = 0"),
        ("[versioning]\nmax_file_size = 'big'\n", "is not a size"),
        ("colour = 1\n", "unknown key colour"),
        ("[env.s]\ntarget = { type = 'directory' }\n[[env.s.check]]\nname = 'x'\n", "has no type"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse(tomllib.loads(text), tmp_path)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lastgood init"):
        load(tmp_path)
    (tmp_path / "lastgood.toml").write_text("[env\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path)


def test_unknown_environment_lists_known_ones(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(MINIMAL), tmp_path)
    with pytest.raises(ConfigError, match="known environments: staging"):
        cfg.environment("prod")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("250ms", 0.25), ("1h", 3600), (2, 2), ("1.5s", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, name="x") == seconds


def test_sizes_and_formatting() -> None:
    assert parse_size("1MiB", name="x") == 1048576
    assert parse_size("500KB", name="x") == 500000
    assert format_duration(0.0123) == "12 ms"
    assert format_duration(1.84) == "1.8 s"
    assert format_duration(245) == "4m 05s"
    assert format_duration(30 * 86400) == "30d"
    assert format_duration(2 * 86400 + 5 * 3600) == "2d 5h"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("store = 5\n", "store = 5 .* must be a string"),
        ("default_env = ['a']\n", "default_env = \\['a'\\] .* must be a string"),
        (
            "[env.s]\ntarget = { type = 'directory' }\n[[env.s.check]]\ntype = 'http'\n"
            "timeout = '0s'\n",
            "timeout .* must be more than 0",
        ),
        ("[env.s]\ntarget = { type = 'directory' }\nprotected = 'yes'\n", "true or false"),
    ],
)
def test_wrong_types_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(tomllib.loads(text), tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # names the reference grammar cannot write (ENV:REF)
        ('[env."team/a"]\ntarget = { type = "directory", path = "../l" }\n', "'team/a' in"),
        ('[env."my env"]\ntarget = { type = "directory", path = "../l" }\n', "[env.my-env]"),
        # a target inside the workspace would version its own releases
        ('[env.s]\ntarget = { type = "directory", path = "live" }\n', "inside the workspace"),
        ('[env.s]\ntarget = { type = "files", path = "." }\n', "inside the workspace"),
        (
            '[env.s]\ntarget = { type = "files", path = "../app", state = "state" }\n',
            "target.state = 'state'",
        ),
        # drill variants stay inside the release and the workspace
        (
            '[env.s]\ntarget = { type = "directory", path = "../l" }\n'
            '[env.s.drill]\nfiles = { "../../etc/x" = "drills/x" }\n',
            "the live path '../../etc/x'",
        ),
        (
            '[env.s]\ntarget = { type = "directory", path = "../l" }\n'
            '[env.s.drill]\nfiles = { "/etc/passwd" = "drills/x" }\n',
            "the live path '/etc/passwd'",
        ),
        (
            '[env.s]\ntarget = { type = "directory", path = "../l" }\n'
            '[env.s.drill]\nfiles = { "a.yaml" = "../outside.yaml" }\n',
            "outside the workspace",
        ),
        (
            '[env.s]\ntarget = { type = "directory", path = "../l" }\n'
            '[env.s.drill]\nfiles = { "a.yaml" = "/etc/passwd" }\n',
            "outside the workspace",
        ),
        # exactly the five cron fields the docs describe
        (
            '[env.s]\ntarget = { type = "directory", path = "../l" }\n'
            'drill_schedule = "0 3 * * 1 *"\n',
            "it has 6 fields, not 5",
        ),
        ('[watch]\ndigest = "@daily"\n', "it has 1 field, not 5"),
        # a destination without a scheme would lose every alert, quietly
        (
            '[[notify.route]]\nname = "ops"\nto = ["hooks.example.com/T0/B0/secret"]\n',
            "notify.route 'ops'.to entry 1",
        ),
        ('[[notify.route]]\nto = "ops@example.com"\n', "not a URL with a scheme"),
    ],
)
def test_hardened_configuration_is_refused_when_read(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(tomllib.loads(text), tmp_path / "ws")
    assert message in str(raised.value)
    assert raised.value.exit_code == 2
    assert "secret" not in str(raised.value)  # a destination is never echoed


def test_a_mistyped_environment_gets_a_did_you_mean(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(MINIMAL), tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'staging'"):
        cfg.environment("stagign")


def test_drill_files_inside_the_workspace_are_accepted(tmp_path: Path) -> None:
    text = MINIMAL + '[env.staging.drill]\nfiles = { "scoring/t.yaml" = "drills/zero.yaml" }\n'
    env = parse(tomllib.loads(text), tmp_path).environment("staging")
    assert env.drill_files == {"scoring/t.yaml": "drills/zero.yaml"}


def test_a_target_inside_the_private_store_folder_is_accepted(tmp_path: Path) -> None:
    text = '[env.s]\ntarget = { type = "served", path = ".lastgood/served/s" }\n'
    env = parse(tomllib.loads(text), tmp_path).environment("s")
    assert env.target.options["path"] == ".lastgood/served/s"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ('template = "../outside.j2"', "outside the workspace"),
        ('title = "{{ oops"', "title in"),
    ],
)
def test_route_templates_are_checked_when_read(tmp_path: Path, route: str, message: str) -> None:
    text = f'[[notify.route]]\nname = "ops"\nto = "json://hooks.example.com/x"\n{route}\n'
    with pytest.raises(ConfigError, match=r"notify\.route 'ops'") as raised:
        parse(tomllib.loads(text), tmp_path)
    assert message in str(raised.value)


def test_two_environments_on_one_target_folder_are_refused(tmp_path: Path) -> None:
    text = (
        '[env.a]\ntarget = { type = "directory", path = "../live" }\n'
        '[env.b]\ntarget = { type = "files", path = "../live/" }\n'
    )
    with pytest.raises(ConfigError, match=r"env\.a\.target and env\.b\.target"):
        parse(tomllib.loads(text), tmp_path / "ws")


def test_a_target_under_the_home_folder_is_not_mistaken_for_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = '[env.s]\ntarget = { type = "directory", path = "~/live/s" }\n'
    env = parse(tomllib.loads(text), tmp_path / "ws").environment("s")
    assert env.target.options["path"] == "~/live/s"
    shared = (
        text + '[env.t]\ntarget = { type = "files", path = "' + str(tmp_path) + '/home/live/s" }\n'
    )
    with pytest.raises(ConfigError, match=r"env\.s\.target and env\.t\.target"):
        parse(tomllib.loads(shared), tmp_path / "ws")


def test_approval_that_could_never_be_given_is_refused_when_read(tmp_path: Path) -> None:
    base = '[env.p]\ntarget = { type = "directory", path = "../live" }\n'
    cases = {
        "[groups]\nai = []\n": "groups.ai in",
        '[groups]\nai = ["lee"]\n[env.p.approval]\napprovers = ["ai"]\nrequired = 2\n': (
            "needs 2 approvals from ai, who are 1 person: no request could be approved"
        ),
        '[env.p.approval]\n[[env.p.approval.rule]]\npaths = ["a/**"]\nmin_files = 5\n'
        "max_files = 2\n": "has min_files above max_files: it can never match",
    }
    for extra, message in cases.items():
        (tmp_path / "lastgood.toml").write_text(base + extra)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load(tmp_path)


def test_every_approval_key_with_a_wrong_value_is_named_with_what_it_accepts(
    tmp_path: Path,
) -> None:
    base = '[env.p]\ntarget = { type = "directory", path = "../live" }\n[env.p.approval]\n'
    cases = {
        'apply = "later"': ("env.p.approval.apply = 'later'", '"manual" or "on-approval"'),
        'approve_via = "cli"': ("approve_via = 'cli'", '"anywhere" or "server"'),
        'emergency = "no"': ("env.p.approval.emergency = 'no'", "must be true or false"),
        "self_approval = 1": ("env.p.approval.self_approval = 1", "must be true or false"),
        'expire = "0s"': ("env.p.approval.expire in", "must be more than 0"),
        'remind = "0s"': ("env.p.approval.remind in", "must be more than 0"),
        'rule = "all"': ("env.p.approval.rule in", "array of tables ([[env.p.approval.rule]])"),
        'colour = "red"': ("unknown key env.p.approval.colour", ""),
    }
    for line, (named, why) in cases.items():
        (tmp_path / "lastgood.toml").write_text(base + line + "\n")
        with pytest.raises(ConfigError) as refused:
            load(tmp_path)
        assert named in str(refused.value) and why in str(refused.value), str(refused.value)


def test_git_refs_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert parse(tomllib.loads(MINIMAL), tmp_path).git.refs is False
    assert parse(tomllib.loads(MINIMAL + "[git]\nrefs = true\n"), tmp_path).git.refs is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[git]\nref = true\n", "unknown key git.ref in"),
        ("[git]\nrefs = 'yes'\n", "git.refs = 'yes' .* must be true or false"),
        ("[git]\nrefs = 1\n", "git.refs = 1 .* must be true or false"),
        ("git = true\n", r"\[git\] .* must be a table"),
        # names git cannot hold in refs/lastgood/NAME/live: refused when read, not at a switch
        (
            '[env."prod.lock"]\ntarget = { type = "directory", path = "../l" }\n'
            "[git]\nrefs = true\n",
            "'prod.lock' .* cannot be part of a git ref",
        ),
        (
            '[env.".hidden"]\ntarget = { type = "directory", path = "../l" }\n[git]\nrefs = true\n',
            "'.hidden' .* cannot be part of a git ref",
        ),
        (
            '[env."eu..west"]\ntarget = { type = "directory", path = "../l" }\n'
            "[git]\nrefs = true\n",
            "'eu..west' .* cannot be part of a git ref",
        ),
    ],
)
def test_the_git_table_is_checked_when_read(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse(tomllib.loads(text), tmp_path / "ws")
    if "unknown key" in message:
        assert raised.value.hint == "did you mean git.refs?"


def test_a_name_git_refuses_is_fine_while_refs_are_off(tmp_path: Path) -> None:
    text = '[env."prod.lock"]\ntarget = { type = "directory", path = "../l" }\n'
    assert "prod.lock" in parse(tomllib.loads(text), tmp_path / "ws").environments
