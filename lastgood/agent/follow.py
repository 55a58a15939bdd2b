"""The SDK's follower, placing each version on the host before it reports again.

:class:`HostConfig` is a :class:`~lastgood.client.LiveConfig` (the same long-poll, hash
verification, backoff and consumer report) of kind ``agent`` with two differences:

- a new version is put live on the host's target *inside* the follower's step, before its next
  request, so that request's ``X-Lastgood-Serving`` already says what the target serves: the
  fleet sees a rollback reach this host one round trip after the switch;
- what it reports serving is what the target serves, read back after each placement (and by
  the agent's periodic checks), never the version it received: a host that refused a version
  withdrawn here keeps reporting the older one it holds.

A placement that fails (a full disk) raises out of the step: the version is not taken, so the
follower asks again after its backoff and the server sends it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from lastgood.client import LiveConfig, Snapshot
from lastgood.client.live import Source
from lastgood.errors import AuthError, LastgoodError, NotFoundError

Placer = Callable[[Snapshot], str]
"""Puts a version live on the host; returns ``VERSION:HASH`` of what the target serves then."""


def nothing_live_yet(error: LastgoodError) -> bool:
    """The server serves the environment but nothing is deployed there yet: a deploy fixes it."""
    return isinstance(error, NotFoundError) and "nothing is live on" in error.message


class HostConfig(LiveConfig):
    """A LiveConfig that places versions with ``placer`` and reports ``serving`` as set."""

    kind: ClassVar[str] = "agent"
    shares_hub: ClassVar[bool] = False  # placing a version writes the disk: its own thread

    def __init__(
        self, url: str | Sequence[str], env: str, *, placer: Placer, serving: str, **options: Any
    ) -> None:
        self._placer = placer
        self._serving = serving
        self.first_failure: LastgoodError | None = None
        super().__init__(url, env, cache=False, **options)

    def _first_read(self, require: bool) -> None:
        """The first request. A refused token, an environment the server does not serve (a
        404 other than "nothing live yet") raise: retrying cannot fix them. Any other failure
        is kept in ``first_failure`` for the agent to word, and the follower retries."""
        try:
            self._refresh(wait=0)
        except NotFoundError as exc:
            if not nothing_live_yet(exc):
                raise
            self.first_failure = exc
        except AuthError:
            raise
        except LastgoodError as exc:
            self.first_failure = exc

    @property
    def serving(self) -> str:
        """``VERSION:HASH`` of what the host's target serves (read back), or ``none``."""
        return self._serving

    @property
    def version(self) -> int | None:
        """The version the host's target serves (not the one last received)."""
        number = self._serving.partition(":")[0]
        return int(number) if number.isdigit() else None

    def set_serving(self, serving: str) -> None:
        self._serving = serving

    def set_health(self, health: str | None, detail: str | None) -> None:
        """Send the host checks' result on every later request."""
        for channel in self._channels:
            channel.set_health(health, detail)

    def _install(self, new: Snapshot, source: Source, confirmed_at: float) -> bool:
        old = self._snapshot
        if source == "server" and (
            old is None or (old.version, old.content_hash) != (new.version, new.content_hash)
        ):
            self._serving = self._placer(new)  # raises: not taken, and asked for again
        return super()._install(new, source, confirmed_at)
