"""A project: one workspace, its configuration, its store and its event stream.

Every verb takes a :class:`Project`. The store is opened on first use, so commands that never
touch it (``init``, ``--help``) never import SQLAlchemy.
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood import config as config_module
from lastgood import settings
from lastgood.errors import LastgoodError
from lastgood.events import Event, EventBus
from lastgood.targets import Target, open_target

if TYPE_CHECKING:
    from lastgood.gitrefs import EnvironmentRefs
    from lastgood.notify.notifier import Notifier
    from lastgood.rows import AuditHead
    from lastgood.store.core import Store

STORE_DIR = ".lastgood"


def default_store_url(root: Path) -> str:
    return f"sqlite:///{root / STORE_DIR / 'store.db'}"


class Project:
    """The workspace at ``root`` with its store; open with :meth:`open`."""

    def __init__(self, cfg: config_module.Config, store_url: str, actor: str) -> None:
        self.config = cfg
        self.store_url = store_url
        self.actor = actor
        self.events = EventBus()
        self.events.set_ledger(self._write_event)
        self._targets: dict[str, Target] = {}
        self._shared = False
        self.notifier: Notifier | None = None
        if cfg.notify.routes:  # without routes nothing of lastgood.notify is even imported
            from lastgood.notify.notifier import Notifier

            self.notifier = Notifier(cfg, lambda: self.store)
            self.events.subscribe(self.notifier)
        self.git_refs = self._keep_git_refs()

    @classmethod
    def open(cls, root: Path, *, store_url: str | None = None, actor: str = "") -> Project:
        """Load ``root/lastgood.toml``; the store URL comes from the flag, env, file or default."""
        cfg = config_module.load(root)
        url = store_url or settings.STORE.read() or cfg.store or default_store_url(root)
        return cls(cfg, url, actor)

    def acting_as(self, actor: str, *, echo: bool = False) -> Project:
        """This project for another actor, sharing the store, targets and notifier.

        The server makes one per request, so every action is recorded with the token's name,
        while every request shares one store connection pool. Closing it closes nothing. With
        ``echo`` its events also reach every other subscriber of this project (the watcher's
        console, for the scheduled apply it performs as the requester), each once.
        """
        other = Project.__new__(Project)
        other.config, other.store_url, other.actor = self.config, self.store_url, actor
        other.events = EventBus()
        other.events.set_ledger(other._write_event)
        other._targets, other._shared, other.notifier = self._targets, True, self.notifier
        shared = self.events.subscribers if echo else ()
        if self.notifier is not None and self.notifier not in shared:
            other.events.subscribe(self.notifier)
        for subscriber in shared:
            other.events.subscribe(subscriber)
        other.__dict__["store"] = self.store
        other.git_refs = other._keep_git_refs()
        return other

    def _keep_git_refs(self) -> EnvironmentRefs | None:
        """With ``[git] refs = true``, the subscriber that moves each environment's refs in git
        after every switch; otherwise None, and nothing of it is imported (the rollback path
        stays as it is)."""
        if not self.config.git.refs:
            return None
        from lastgood.gitrefs import EnvironmentRefs

        keeper = EnvironmentRefs(self.root, lambda: self.store, self.emit)
        self.events.subscribe(keeper)
        return keeper

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def store(self) -> Store:
        from lastgood.store import open_store

        if self.store_url == default_store_url(self.root):
            (self.root / STORE_DIR).mkdir(exist_ok=True)
        store = open_store(self.store_url)
        store.head_keeper = self._keep_audit_head
        return store

    def target(self, env: str) -> Target:
        """The target of environment ``env`` (one instance per project)."""
        if env not in self._targets:
            spec = self.config.environment(env).target
            self._targets[env] = open_target(env, spec, self.root)
        return self._targets[env]

    def _keep_audit_head(self, env: str | None, head: AuditHead) -> None:
        """Write the audit chain's newest head beside the state of ``env``'s target, when the
        target keeps state (see :meth:`Target.record_audit_head`); beside every environment's
        when the link belongs to none (``None``: a token made or revoked, versions pruned) or
        to one this configuration no longer has, so a tail of those links cut off is caught
        as surely as a deploy's.

        Never raises: a head that cannot be written only makes truncation harder to prove
        later, and must not fail the write that caused the append (nor keep the head from
        the other targets).
        """
        known = self.config.environments
        for each in [env] if env is not None and env in known else list(known):
            try:
                self.target(each).record_audit_head(head)
            except (LastgoodError, OSError):
                continue

    def emit(self, event: Event) -> None:
        self.events.emit(event)

    def _write_event(self, event: Event) -> None:
        self.store.record_event(
            event.kind.value,
            event.message,
            env=event.env,
            version=event.version,
            deployment=event.deployment,
            data=event.data,
            at=time.time(),
            actor=self.actor,
        )

    def close(self) -> None:
        """Drain notifications (at most ``[notify] drain`` seconds), then close the store."""
        if self._shared:
            return
        if self.notifier is not None:
            self.notifier.close()
        if "store" in self.__dict__:
            self.store.close()
