"""``lastgood.secrets`` in process: reading ``[secrets]``, masking every file shape and diff,
and the credential scan. The edges (CLI, server, web, alerts) are in test_secrets_edges.py."""

from __future__ import annotations

import difflib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lastgood import config
from lastgood.errors import ConfigError
from lastgood.secrets.mask import Masker
from lastgood.secrets.policy import DEFAULT_POLICY, SecretPolicy, parse_policy
from lastgood.secrets.scan import scan, warning

WHERE = "/ws/lastgood.toml"


def policy(**table: object) -> SecretPolicy:
    return parse_policy(table, WHERE)


def shown(path: str, text: str, rules: SecretPolicy | None = None) -> str:
    return Masker(rules).content(path, text.encode()).decode()


def diff_of(path: str, old: str, new: str, rules: SecretPolicy | None = None) -> str:
    before, after = Masker(rules).pair(path, old.encode(), new.encode())
    assert before is not None and after is not None
    lines = difflib.unified_diff(
        before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True)
    )
    return "".join(lines)


# ---- [secrets] -----------------------------------------------------------------------------


def test_defaults_apply_without_a_table(tmp_path: Path) -> None:
    parsed = config.parse({}, tmp_path)
    assert parsed.secrets is None  # None means the defaults, never "nothing is secret"
    assert DEFAULT_POLICY.is_secret_key("api_key") and DEFAULT_POLICY.is_secret_key("API_KEY")
    assert DEFAULT_POLICY.is_secret_key("apiKey") and DEFAULT_POLICY.is_secret_key("db.password")
    assert DEFAULT_POLICY.is_secret_key("CLIENT_SECRET") and DEFAULT_POLICY.is_secret_key("token")
    assert not DEFAULT_POLICY.is_secret_key("max_tokens")  # an LLM setting, not a credential
    assert not DEFAULT_POLICY.is_secret_key("threshold")


def test_team_keys_add_to_the_defaults_or_replace_them() -> None:
    added = policy(keys=["*crm_key*"], allow=["token_ttl"])
    assert added.is_secret_key("crm_key") and added.is_secret_key("password")
    assert not added.is_secret_key("token_ttl")
    replaced = policy(keys=["*crm_key*"], replace_defaults=True)
    assert replaced.is_secret_key("crm_key") and not replaced.is_secret_key("password")
    assert replaced.is_secret_key("max_tokens") is False  # no pattern of the team's matches


def test_paths_and_selectors() -> None:
    rules = policy(
        paths=["integrations/*.env"],
        values=["crm.yaml:$.auth.key", "*.json:$.*.token", "svc.toml:$..pin", "a.yaml:$['x.y'][0]"],
    )
    assert rules.is_secret_file("integrations/crm.env") and not rules.is_secret_file("crm.env")
    assert [s.text for s in rules.selectors_for("crm.yaml")] == ["crm.yaml:$.auth.key"]
    assert [s.text for s in rules.selectors_for("deep/x.json")] == ["*.json:$.*.token"]


@pytest.mark.parametrize(
    ("table", "message", "hint"),
    [
        ({"kyes": ["*x*"]}, "unknown key secrets.kyes", "did you mean secrets.keys?"),
        ({"keys": "*x*"}, "secrets.keys in /ws/lastgood.toml must be a list of strings", "e.g."),
        ({"keys": [""]}, "secrets.keys in /ws/lastgood.toml has an empty pattern", "glob"),
        ({"replace_defaults": "yes"}, "must be true or false", None),
        ({"values": ["crm.yaml"]}, "needs a file pattern, a colon and a path from $", "FILES:$"),
        ({"values": ["crm.yaml:$.a b"]}, "cannot read the path at ' b'", "steps are"),
        ({"values": ["crm.yaml:$"]}, "selects the whole file", 'paths = ["crm.yaml"]'),
        ({"paths": [1]}, "secrets.paths in /ws/lastgood.toml must be a list of strings", None),
    ],
)
def test_every_key_is_checked_when_the_file_is_read(
    table: dict[str, object], message: str, hint: str | None, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse({"secrets": table}, tmp_path)
    assert (
        message.replace("/ws/lastgood.toml", str(tmp_path / "lastgood.toml"))
        in caught.value.message
    )
    if hint:
        assert caught.value.hint and hint in caught.value.hint
    with pytest.raises(ConfigError, match=r"\[secrets\] in .* must be a table"):
        config.parse({"secrets": ["x"]}, tmp_path)


def test_rollback_never_loads_the_masking_code(tmp_path: Path) -> None:
    """Without [secrets] nothing of lastgood.secrets is imported when the config is read; with
    it, only the small policy module (to check it), never the masking code or YAML."""
    base = '[env.staging]\ntarget = { type = "directory", path = "../live" }\n'
    probe = (
        "import sys; from pathlib import Path; from lastgood import config; "
        f"config.load(Path({str(tmp_path)!r})); "
        "print(sorted(m for m in sys.modules if m.startswith('lastgood.secrets') or m == 'yaml'))"
    )
    for extra, loaded in (
        ("", "[]"),
        (
            '[secrets]\nkeys = ["*crm*"]\nvalues = ["a.yaml:$.b"]\n',
            "['lastgood.secrets', 'lastgood.secrets.policy']",
        ),
    ):
        (tmp_path / "lastgood.toml").write_text(base + extra)
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == loaded


# ---- masking each shape -----------------------------------------------------------------------


def test_yaml_keys_nested_lists_and_block_strings() -> None:
    text = textwrap.dedent(
        """\
        crm:
          api_key: "sk-live-abcdef"   # rotated monthly
          url: https://crm.example.com
          tokens:
            - first-token-value
            - second-token-value
        client_secret: |
          line-one-of-the-secret
          line-two-of-the-secret
        threshold: 0.4
        max_tokens: 500
        """
    )
    out = shown("crm.yaml", text)
    for value in ("sk-live-abcdef", "first-token-value", "second-token-value", "line-one-of-the"):
        assert value not in out
    assert '  api_key: "••••••#1"   # rotated monthly' in out
    assert "url: https://crm.example.com" in out and "threshold: 0.4" in out
    assert "max_tokens: 500" in out and out.count("\n") == text.count("\n")


def test_json_pretty_and_one_line_and_query_strings() -> None:
    pretty = '{\n  "auth": {\n    "apiKey": "abc\\"def",\n    "user": "bob"\n  }\n}\n'
    assert (
        shown("a.json", pretty)
        == '{\n  "auth": {\n    "apiKey": "••••••#1",\n    "user": "bob"\n  }\n}\n'
    )
    one = '{"svc": {"token": "tok-1234"}, "hook": "https://h/x?api_key=qq99&b=2"}'
    out = shown("b.json", one)
    assert "tok-1234" not in out and "qq99" not in out and "&b=2" in out


def test_toml_env_ini_and_plain_text() -> None:
    toml = '[db]\npassword = "pw-in-toml"\nauth.token = "dotted-token"\nport = 5432\n'
    assert (
        shown("s.toml", toml)
        == '[db]\npassword = "••••••#1"\nauth.token = "••••••#2"\nport = 5432\n'
    )
    env = "export DB_PASSWORD='p@ss word' # c\nAPI_KEY=abc123\nUSE_TOKEN=true\n"
    assert (
        shown("app.env", env)
        == "export DB_PASSWORD='••••••#1' # c\nAPI_KEY=••••••#2\nUSE_TOKEN=true\n"
    )
    ini = "[crm]\nsecret = s3cr3t-value\nname = crm\n"
    assert shown("crm.ini", ini) == "[crm]\nsecret = ••••••#1\nname = crm\n"
    text = "Password: correct horse battery  # yes\nNote: call Dana\n"
    assert shown("notes.txt", text) == "Password: ••••••#1  # yes\nNote: call Dana\n"


def test_a_secret_pasted_elsewhere_and_url_passwords_are_masked_too() -> None:
    text = "api_key: k-9f8e7d6c\nnote: the old key k-9f8e7d6c still works\ndb: postgresql://app:pw123@db/x\n"
    out = shown("x.yaml", text)
    assert (
        out
        == "api_key: ••••••#1\nnote: the old key ••••••#1 still works\ndb: postgresql://app:••••••#2@db/x\n"
    )


def test_short_numbers_under_a_secret_key_hide_nothing_else() -> None:
    out = shown("x.yaml", "token_ttl: 60\ntimeout: 60\n")
    assert out == "token_ttl: ••••••#1\ntimeout: 60\n"


def test_selectors_pick_values_by_path() -> None:
    rules = policy(values=["crm.yaml:$.auth.key", "svc.json:$..pin", "list.yaml:$.hosts[*].id"])
    assert shown("crm.yaml", "auth:\n  key: AAAA-1111\n  user: bob\nkey: visible\n", rules) == (
        "auth:\n  key: ••••••#1\n  user: bob\nkey: visible\n"
    )
    assert "4321" not in shown("svc.json", '{"a": {"b": {"pin": 4321}}}', rules)
    out = shown("list.yaml", "hosts:\n  - id: host-one-id\n  - id: host-two-id\n", rules)
    assert "host-one-id" not in out and "host-two-id" not in out


def test_whole_secret_files_and_binaries() -> None:
    rules = policy(paths=["integrations/*.env"])
    masker = Masker(rules)
    assert masker.content("integrations/crm.env", b"A=1\n") == b"(secret file: 4 bytes)\n"
    assert masker.pair("integrations/crm.env", b"A=1\n", b"A=22\n") == (
        b"(secret file: 4 bytes)\n",
        b"(secret file: 5 bytes, changed)\n",
    )
    binary = b"\x00\x01api_key: x"
    assert masker.pair("logo.png", binary, binary + b"!") == (binary, binary + b"!")


# ---- diffs ------------------------------------------------------------------------------------


def test_a_diff_says_that_a_secret_changed_and_never_what_it_was() -> None:
    old = "api_key: old-key-1234\npassword: same-pw-5678\nthreshold: 0.4\n"
    new = "api_key: new-key-9999\npassword: same-pw-5678\nthreshold: 0.5\n"
    text = diff_of("a.yaml", old, new)
    assert "old-key" not in text and "new-key" not in text and "same-pw" not in text
    assert "-api_key: ••••••#1\n" in text and "+api_key: ••••••#3 (new value)\n" in text
    assert " password: ••••••#2\n" in text  # unchanged: the same marker on both sides
    assert "-threshold: 0.4\n+threshold: 0.5\n" in text


def test_an_unchanged_secret_makes_no_line_of_diff() -> None:
    old = "api_key: k-1234567\nthreshold: 0.4\n"
    assert diff_of("a.yaml", old, old.replace("0.4", "0.5")).count("api_key") == 1  # context


def test_a_made_diff_is_masked_line_by_line() -> None:
    made = (
        "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-password: hunter2\n+password: hunter3\n"
        " context api_key=foo\n"
    )
    out = Masker().diff(made)
    assert out == (
        "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-password: ••••••#1\n+password: ••••••#3 (new value)\n"
        " context api_key=••••••#2\n"
    )
    assert Masker().diff(out) == out  # masking twice changes nothing


# ---- the credential scan ------------------------------------------------------------------------


def test_known_tokens_and_high_entropy_strings_outside_marked_keys() -> None:
    text = textwrap.dedent(
        """\
        note: ghp_abcdefghijklmnopqrstuvwxyz0123456789
        looks: aB3dE5gH7jK9mN1pQ3sT5vW7yZ9
        api_key: ghp_ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210
        hash: 3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d3f2a9c1d
        prose: our GitHub tokens start with ghp_ and that is fine
        slack: xoxb-1234567890-abcdefghij
        id: 123e4567-e89b-12d3-a456-426614174000
        key_file: |
          -----BEGIN RSA PRIVATE KEY-----
        aws: AKIAIOSFODNN7EXAMPLE
        pasted: ghp_ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210
        """
    )
    found = scan("cfg.yaml", text.encode(), None)
    assert [(s.line, s.kind, s.key) for s in found] == [
        (1, "a GitHub token (ghp_…)", "note"),
        (2, "a high-entropy string of 27 characters", "looks"),
        (6, "a Slack token (xox…-)", "slack"),
        (9, "a private key", None),
        (10, "an AWS access key id (AKIA…)", "aws"),
    ]  # line 3 is a marked key, and line 11 holds its value: both masked, so not reported
    message = warning(found[0])
    assert "cfg.yaml line 1" in message and '[secrets] keys = ["note"]' in message
    assert "ghp_abcdefghijklmnopqrstuvwxyz" not in message


def test_nothing_is_reported_in_a_secret_file() -> None:
    rules = policy(paths=["*.pem"])
    assert scan("key.pem", b"-----BEGIN PRIVATE KEY-----\n", rules) == []


def test_long_lines_are_masked_and_scanned_whole() -> None:
    """One line can be a 400 KB minified JSON or a list of URLs: every password in it is masked
    and the rest kept, at a cost that grows with the line, not with its square (a 32 KB line
    once took a minute, and a 200 KB file stopped a deploy)."""
    urls = "a://b:c@" * 20_000
    masked = Masker(DEFAULT_POLICY).content("hosts.txt", urls.encode()).decode()
    assert masked.count("a://b:") == 20_000 and ":c@" not in masked
    plain = "x" * 400_000 + "\n" + "token=x " * 20_000 + "\n"
    assert scan("long.txt", plain.encode(), None) == []
    shown = Masker(DEFAULT_POLICY).content("long.txt", plain.encode()).decode()
    assert shown.startswith("x" * 400_000 + "\ntoken=••••••") and "token=x " not in shown
