"""Make ``store-0004.db``: a store written by the release before store v2 (schema 0004).

It is kept in the repository so the migration tests convert what that release really wrote.
Run it with that release on the path, for example from a checkout of the commit before the
migration ``0005_trees`` was added::

    git archive 8f4f1ed lastgood | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/make_store_0004.py tests/data/store-0004.db
"""

from __future__ import annotations

import sys

from lastgood.bundle import Bundle
from lastgood.store import open_store


def main(path: str) -> None:
    store = open_store(f"sqlite:///{path}")
    files = {
        "prompt.txt": b"Score each lead from 0 to 100.\n",
        "rules/threshold.yaml": b"threshold: 0.5\n",
        "rules/routing/eu.yaml": b"queue: eu\n",
        "rules/routing/us.yaml": b"queue: us\n",
        "notes/caf\u00e9 menu.md": "Caf\u00e9 \u2014 prompts by region\n".encode(),
        "big/scoring.json": b'{"weights": [' + b", ".join(b"0.5" for _ in range(3000)) + b"]}\n",
        "binary.bin": bytes(range(256)),
    }
    store.add_version(Bundle(files), author="ana", message="first", source="cli")
    for number in range(2, 40):
        files[f"rules/routing/r{number % 7}.yaml"] = f"queue: r{number}\n".encode()
        if number % 5 == 0:
            files.pop("rules/routing/us.yaml", None)
        if number % 9 == 0:
            files["rules/routing/us.yaml"] = b"queue: us\n"
        files["rules/threshold.yaml"] = f"threshold: 0.{number % 10}\n".encode()
        store.add_version(
            Bundle(dict(files)), author="bo", message=f"change {number}", source="cli"
        )
    store.add_version(Bundle({}), author="bo", message="emptied", source="cli")
    store.add_version(Bundle(files), author="bo", message="back", source="cli")
    record = store.begin_deployment(
        env="production", kind="deploy", to_version=41, actor="bo", source="cli"
    )
    store.update_deployment(record.id, status="verified", activated_at=record.requested_at + 1)
    store.set_env("production", live_version=41, last_good=41)
    store.set_verdict("production", 41, "good", deployment=record.id)
    store.record_event("deploy-verified", "v41 verified", env="production", version=41)
    store.add_document_version(
        "runbook", b"threshold: 0.5\n", source="file:runbook.md", diff="", added=1, removed=0
    )
    store.add_document_version(
        "runbook",
        b"step one\nstep two\n",
        source="file:runbook.md",
        diff="+step two",
        added=1,
        removed=0,
    )
    store.add_token(name="ci", role="deployer", envs="*", token_hash="ab" * 32, created_by="ana")
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
