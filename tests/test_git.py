"""Versions know their git commit; ``deploy --commit`` and ``git:REF`` read git's objects.

Every test makes a real repository with the real ``git`` in a temporary folder; the workspace
is a subfolder of it (``ws/``), as in a repository that holds more than configuration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FAST, Workspace
from tests.serving import Server
from tests.test_cli_remote import remote
from tests.test_web import signed_in

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

WHEN = 1_767_000_000  # 2025-12-29: the commits' author date, so the versions can be checked


def git(where: Path, *args: str, when: int = WHEN) -> str:
    """Run the real git in ``where`` as Ana, at a fixed time; its output."""
    environ = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ana Lee",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana Lee",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
        "GIT_AUTHOR_DATE": f"@{when} +0000",
        "GIT_COMMITTER_DATE": f"@{when} +0000",
    }
    done = subprocess.run(
        ["git", *args], cwd=where, capture_output=True, text=True, env=environ, check=True
    )
    return done.stdout.strip()


def commit_all(ws: Workspace, message: str, when: int = WHEN) -> str:
    git(ws.base, "add", "-A")
    git(ws.base, "commit", "-q", "-m", message, when=when)
    return git(ws.base, "rev-parse", "HEAD")


def repo(make: Callable[..., Workspace], **options: str) -> Workspace:
    """A workspace in ``ws/`` of a git repository at its base, with one commit (the config);
    versions are judged in one round (FAST) unless ``options`` say otherwise: what git holds
    does not depend on the bake."""
    ws = make(**{**FAST, **options})
    git(ws.base, "init", "-q", "-b", "main")
    (ws.base / "README.md").write_text("not configuration: outside the workspace\n")
    commit_all(ws, "start")
    return ws


def version_json(ws: Workspace, ref: str) -> dict[str, object]:
    shown = ws.run("show", ref, "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout)["version"])


def served_text(ws: Workspace, path: str) -> str:
    return (ws.base / "live" / "current" / path).read_text()


def test_a_snapshot_records_the_commit_and_whether_the_folder_had_changed(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    head = commit_all(ws, "one")
    clean = ws.run("snapshot", "-m", "clean", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["version"]["git_commit"] == head
    assert json.loads(clean.stdout)["version"]["git_dirty"] is False
    ws.healthy("two")  # not committed
    dirty = json.loads(ws.run("snapshot", "-m", "wip", "--json").stdout)["version"]
    assert (dirty["git_commit"], dirty["git_dirty"]) == (head, True)
    log = ws.run("log").stdout
    assert log.splitlines()[0].split()[:3] == ["version", "hash", "commit"]
    assert f"{head[:10]}-dirty" in log.splitlines()[1] and "wip" in log.splitlines()[1]
    assert f"{head[:10]} " in log.splitlines()[2]


def test_outside_a_repository_versions_have_no_commit_and_log_no_column(
    workspace: Callable[..., Workspace],
) -> None:
    ws = workspace()
    ws.healthy("one")
    assert ws.run("snapshot", "-m", "one").returncode == 0
    assert version_json(ws, "v1")["git_commit"] is None
    assert "commit" not in ws.run("log").stdout
    refused = ws.run("deploy", "staging", "--commit", "HEAD")
    assert refused.returncode == 2
    assert "is not in a git repository" in refused.stderr and "git init" in refused.stderr


def test_deploy_commit_puts_live_what_the_commit_holds_not_the_folder(
    workspace: Callable[..., Workspace], store_url: str
) -> None:
    ws = repo(workspace, store=store_url)
    ws.healthy("one")
    first = commit_all(ws, "first rules\n\nwith a body", when=WHEN)
    ws.healthy("two")
    commit_all(ws, "second rules", when=WHEN + 60)
    ws.broken("not committed")  # the folder now holds something else entirely

    done = ws.run("deploy", "staging", "--commit", "HEAD~1")

    assert done.returncode == 0, done.stderr
    assert served_text(ws, "scoring/thresholds.yaml") == "threshold: 0.4\nmarker: one\n"
    version = version_json(ws, "staging:live")
    assert version["git_commit"] == first and version["git_dirty"] is False
    assert version["author"] == "Ana Lee <ana@example.com>"
    assert version["message"] == "first rules\n\nwith a body"
    assert version["created_at"] == WHEN
    assert version["source"] == "git"
    again = ws.run("deploy", "staging", "--version", "git:HEAD~1", "--json")
    assert json.loads(again.stdout)["version"] == version["number"]  # the same version
    second = ws.run("deploy", "staging", "--version", "git:main", "--json")
    assert second.returncode == 0, second.stderr
    assert served_text(ws, "scoring/thresholds.yaml") == "threshold: 0.4\nmarker: two\n"
    assert "commit " + git(ws.base, "rev-parse", "main")[:10] in ws.run("status").stdout


def test_git_refs_name_recorded_versions_everywhere(workspace: Callable[..., Workspace]) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    commit_all(ws, "one")
    ws.healthy("two")
    commit_all(ws, "two")
    assert ws.run("deploy", "staging", "--commit", "HEAD~1").returncode == 0
    assert ws.run("deploy", "staging", "--commit", "HEAD").returncode == 0
    shown = ws.run("show", "git:HEAD~1")
    assert shown.returncode == 0 and "(commit " in shown.stderr and ": one" in shown.stderr
    diff = ws.run("diff", "git:HEAD~1", "git:main")
    assert diff.returncode == 0 and "-marker: one\n+marker: two" in diff.stdout, diff.stdout
    back = ws.run("rollback", "staging", "--to", "git:HEAD~1")
    assert back.returncode == 0, back.stderr
    assert served_text(ws, "scoring/thresholds.yaml") == "threshold: 0.4\nmarker: one\n"
    # a commit that holds exactly what a version holds names that version
    git(ws.base, "commit", "-q", "--allow-empty", "-m", "nothing changed")
    assert version_json(ws, "git:HEAD")["number"] == version_json(ws, "git:HEAD~1")["number"]


def test_a_commit_never_recorded_is_named_with_how_to_record_it(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    commit_all(ws, "one")
    unknown = ws.run("show", "git:HEAD")
    assert unknown.returncode == 2
    assert "is not recorded as a version" in unknown.stderr
    assert "lastgood deploy ENV --commit HEAD" in unknown.stderr
    nothing = ws.run("show", "git:no-such-branch")
    assert nothing.returncode == 2 and "git knows no commit 'no-such-branch'" in nothing.stderr
    dashed = ws.run("deploy", "staging", "--commit=--output=/tmp/x")
    assert dashed.returncode == 2 and "is not a git reference" in dashed.stderr
    both = ws.run("deploy", "staging", "--commit", "HEAD", "--version", "v1")
    assert both.returncode == 2 and "--commit and --version exclude each other" in both.stderr
    plan = ws.run("deploy", "staging", "--commit", "HEAD", "--dry-run")
    assert plan.returncode == 0 and "record git:HEAD (commit " in plan.stdout
    assert json.loads(ws.run("log", "--json").stdout) == []  # a dry run recorded nothing


def test_a_commit_with_raw_data_is_refused_naming_the_file(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    ws.write("exports/leads.csv", "id,score\n1,0.4\n")
    commit_all(ws, "oops, data")
    refused = ws.run("deploy", "staging", "--commit", "HEAD")
    assert refused.returncode == 5, refused.stderr
    assert "exports/leads.csv looks like raw data" in refused.stderr
    assert json.loads(ws.run("log", "--json").stdout) == []


def test_links_excludes_and_files_outside_the_workspace(
    workspace: Callable[..., Workspace],
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    (ws.root / "prompts").mkdir()
    (ws.root / "prompts" / "base.txt").write_text("be kind\n")
    (ws.root / "prompts" / "current.txt").symlink_to("base.txt")
    (ws.root / ".lastgood-ignored").mkdir()
    commit_all(ws, "with a link")
    assert ws.run("deploy", "staging", "--commit", "HEAD").returncode == 0
    files = ws.run("show", "git:HEAD").stdout
    assert "prompts/current.txt" in files and "README.md" not in files
    assert "lastgood.toml" not in files
    assert ws.run("show", "git:HEAD", "prompts/current.txt").stdout == "be kind\n"
    (ws.root / "prompts" / "current.txt").unlink()
    (ws.root / "prompts" / "current.txt").symlink_to("../../README.md")
    commit_all(ws, "a link out of the workspace")
    refused = ws.run("deploy", "staging", "--commit", "HEAD")
    assert refused.returncode == 5 and "prompts/current.txt is a symbolic link" in refused.stderr
    # the folder equals HEAD's files (links read as their targets): a snapshot is clean
    (ws.root / "prompts" / "current.txt").unlink()
    (ws.root / "prompts" / "current.txt").symlink_to("base.txt")
    commit_all(ws, "link back")
    clean = json.loads(ws.run("snapshot", "-m", "now", "--json").stdout)["version"]
    assert clean["git_dirty"] is False


def test_an_environment_cannot_be_called_git(workspace: Callable[..., Workspace]) -> None:
    ws = workspace()
    (ws.root / "lastgood.toml").write_text(
        '[env.git]\ntarget = { type = "directory", path = "../live/git" }\n'
    )
    refused = ws.run("status")
    assert refused.returncode == 2, refused.stderr
    assert "an environment cannot be called 'git'" in refused.stderr


def test_deploy_commit_through_a_server_uploads_the_commit(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = repo(workspace, target="served")
    ws.healthy("one")
    head = commit_all(ws, "served rules\n\nThe body: why one, over two lines.\nSee #12.")
    ws.broken("not committed")
    server = serve(ws)
    token = server.token("deployer")
    remote = {"LASTGOOD_SERVER": server.url, "LASTGOOD_TOKEN": token}
    done = ws.run("deploy", "staging", "--commit", "HEAD", env=remote)
    assert done.returncode == 0, done.stderr
    assert "uploaded git:HEAD as v1" in done.stderr
    version = version_json(ws, "v1")
    assert version["git_commit"] == head and version["git_dirty"] is False
    assert version["message"] == "served rules\n\nThe body: why one, over two lines.\nSee #12."
    with server.client() as page:
        assert page.post("/login", data={"token": token}).status_code == 303
        versions = page.get("/versions").text
        assert f'<code title="{head}">{head[:10]}</code>' in versions
        assert f"<dt>Git commit</dt><dd><code>{head}</code>" in page.get("/versions/v1").text
        assert f"commit {head[:10]}</code>" in page.get("/envs/staging").text
    ws.healthy("two")
    second = commit_all(ws, "rules to review")
    ws.broken("not committed either")
    opened = ws.run("request", "staging", "--version", "git:HEAD", "-m", "review", env=remote)
    assert opened.returncode == 0, opened.stderr  # the commit, not the folder, nor 'git:HEAD'
    assert "uploaded git:HEAD as v2" in opened.stderr
    assert opened.stdout.startswith("request   #1  staging  v2 (based on v1)")
    assert version_json(ws, "v2")["git_commit"] == second
    pages_name_versions_by_commit(server, token, head, second)


def test_deploy_commit_through_a_server_records_the_commits_author_and_date(
    workspace: Callable[..., Workspace], serve: Callable[..., Server], store_url: str
) -> None:
    """The version on the server carries the commit's author, author date and whole message
    (source ``git``), as ``deploy --commit`` records it on the store: it used to carry the
    token's name, the upload's time and source ``server``, so ``log`` and ``blame`` named the
    CI token, not who wrote the change. The deploy's actor stays the token, which did it."""
    ws = repo(workspace, target="served", store=store_url)
    ws.healthy("one")
    head = commit_all(ws, "Lower the threshold\n\nSales asked for more leads.", when=WHEN - 3600)
    server = serve(ws)
    token = server.token("deployer", name="ci")

    def through(*args: str) -> str:  # the CI's CLI: the checkout and the server, no store
        done = remote(server, token, *args, cwd=ws.root)
        assert done.returncode == 0, done.stderr
        return done.stdout

    through("deploy", "staging", "--commit", "HEAD")
    version = json.loads(through("show", "v1", "--json"))["version"]
    assert version["git_commit"] == head and version["author"] == "Ana Lee <ana@example.com>"
    assert (version["created_at"], version["source"]) == (WHEN - 3600, "git")
    assert version["message"] == "Lower the threshold\n\nSales asked for more leads."
    assert "Ana Lee <ana@example.com>" in through("log")
    assert version_json(ws, "v1") == version  # the store holds what the server said
    ledger = json.loads(through("history", "staging", "--json"))
    assert ledger["deployments"][0]["actor"] == "ci"  # who deployed it
    commit_upload_is_checked(server, token, head)


def commit_upload_is_checked(server: Server, token: str, sha: str) -> None:
    """What the upload says of a commit is refused (400, 422) when it is not about one, or cannot
    be shown as it is; nothing is recorded."""
    files = {"a.yaml": {"content": "a: 1\n"}}
    commit = {"files": files, "git_commit": sha, "from_commit": True}
    with server.client(token) as api:
        folder = api.post("/api/v1/versions", json={"files": files, "git_author": "Ana <a@b>"})
        hidden = api.post("/api/v1/versions", json={**commit, "git_author": "Ana\x1b[2K <a@b>"})
        negative = api.post("/api/v1/versions", json={**commit, "git_author_date": -1})
        assert api.get("/api/v1/versions").json()[0]["number"] == 1
    assert folder.status_code == 400, folder.text
    assert folder.json()["error"].startswith("git_author and git_author_date describe")
    assert hidden.status_code == 400, hidden.text
    assert "git_author holds U+001B (a control character)" in hidden.json()["error"]
    assert negative.status_code == 422 and "git_author_date" in negative.text, negative.text


def pages_name_versions_by_commit(server: Server, token: str, first: str, second: str) -> None:
    """Wherever the page lists or names a version, a version from git shows its short commit
    and its subject (the message's first line), as 'lastgood log' does: v1 is ``first``'s (a
    subject, then a body), live; v2 is ``second``'s, which the request's message names."""
    commit = f'commit <code title="{second}">{second[:10]}</code>'
    with signed_in(server, token) as page:
        listed = page.get("/versions").text
        assert re.search(r'<td class="why" title="served rules\s+The body[^"]*">'
                         r"served rules</td>", listed), listed  # fmt: skip
        assert '<td class="why">review</td>' in listed  # one line: no title
        environment = page.get("/envs/staging").text
        choice = f"v2: review (commit {second[:10]}, "
        assert environment.count(choice) == 2, environment  # deploy and propose
        assert f"v1 (live): served rules (commit {first[:10]}, " in environment
        body = re.compile(r"<option[^>]*>[^<]*The body|“served rules\s+The body")
        assert "“served rules”" in environment and not body.search(environment)  # last change
        compare = page.get("/diff").text
        assert f'<option value="v2" selected>{choice}' in compare and not body.search(compare)
        confirm = page.get("/envs/staging/deploy", params={"version": "v2"}).text
        assert re.search(rf"v2: “review” by [^<]+<time[^>]*>.*</span>, {commit}", confirm)
        request = page.get("/requests/1").text
        assert f'<span class="why">review</span> {commit}' in request, request
        shown = page.get("/versions/v1").text
        assert '<dd class="why message">served rules\n\nThe body' in shown


def test_deploy_commit_through_a_server_gets_the_commits_own_version(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws = repo(workspace)
    ws.healthy("one")
    first = commit_all(ws, "one")
    server = serve(ws)
    token = server.token("deployer")
    remote = {"LASTGOOD_SERVER": server.url, "LASTGOOD_TOKEN": token}
    ws.healthy("two")  # tried before it is committed: the server's newest version holds it
    assert ws.run("snapshot", "-m", "try two", env=remote).returncode == 0
    tried = version_json(ws, "v1")
    assert (tried["git_commit"], tried["git_dirty"]) == (first, True)
    second = commit_all(ws, "Two, as sales asked")

    done = ws.run("deploy", "staging", "--commit", "HEAD", env=remote)

    assert done.returncode == 0, done.stderr
    assert "uploaded git:HEAD as v2" in done.stderr  # the commit's own version, not v1
    carried = version_json(ws, "v2")
    assert (carried["git_commit"], carried["git_dirty"]) == (second, False)
    assert carried["content_hash"] == tried["content_hash"]
    assert carried["message"] == "Two, as sales asked"
    assert ws.run("deploy", "staging", "--commit", "HEAD~1", env=remote).returncode == 0
    again = ws.run("deploy", "staging", "--commit", "HEAD", env=remote)
    assert again.returncode == 0, again.stderr
    assert "git:HEAD is already v2" in again.stderr  # once per commit, whatever came since
    assert version_json(ws, "staging:live")["number"] == 2
    with server.client(token) as api:  # the server cannot tell which commit: refused, clearly
        files = {"a.yaml": {"content": "a: 1\n"}}
        refused = api.post("/api/v1/versions", json={"files": files, "from_commit": True})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"].startswith("from_commit needs git_commit")
