"""A place: one environment of a project, resolved once for the verb that works on it.

A verb that acts on an environment (``deploy``, ``rollback``, ``status``, ``drill`` …) takes
``(project, env)`` from its edge, builds one :class:`Place`, and hands that to every helper
beneath it: the name is checked once (the ConfigError that lists the known environments), and
its settings, target and store are held for the rest of the verb instead of being looked up again
in every function.

Why a class of the verb layer, and not a method of :class:`~lastgood.project.Project`? A project
is the workspace as a whole, opened once by each edge and shared by every verb (the server makes
one per request); a place is one verb's view of one environment, and only the verbs need it.
``project.environment(name)`` would also sit beside ``project.config.environment(name)`` and
return something else under the same name. Reads nothing itself: the target and the store open
on first use, as the project's do, so a verb that never touches them (``history`` reads no
target) never opens them, and a broken target is reported where it was before.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.config import Environment
    from lastgood.events import Event
    from lastgood.project import Project
    from lastgood.store.core import Store
    from lastgood.targets import Target


class Place:
    """Environment ``name`` of ``project``: its settings now, its target and store on first use.

    ``Place(project, "staging")`` raises ConfigError for a name lastgood.toml does not define."""

    def __init__(self, project: Project, name: str) -> None:
        self.project = project
        self.name = name
        self.settings: Environment = project.config.environment(name)

    @cached_property
    def target(self) -> Target:
        """The environment's target (the project's one instance of it)."""
        return self.project.target(self.name)

    @cached_property
    def store(self) -> Store:
        """The project's store."""
        return self.project.store

    def emit(self, event: Event) -> None:
        """Send ``event`` down the project's stream (ledger, notifications, progress)."""
        self.project.emit(event)

    def __repr__(self) -> str:
        return f"Place({self.name!r})"
