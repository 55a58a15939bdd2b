"""``lastgood agent``: put each version a lastgood server serves live on this host's own target.

An agent follows one served environment with the SDK (long-polls, verified payloads), and puts
every new version live through a local target (``directory`` or ``files``): staged as a complete
release, switched atomically, read back and hash-verified, old releases pruned to ``keep``. A
version the host already retains (a rollback) is a pointer switch only. It reports to the fleet
view the version its target *really* serves, as a consumer of kind ``agent``, with the result of
the environment's host-local checks.

The host keeps a small workspace (a ``lastgood.toml`` naming the environment and its target), so
``lastgood -C DIR rollback ENV --offline`` works on the host with the server away; a release
withdrawn that way is never put back by the agent (see docs/agents.md).

Modules: :mod:`~lastgood.agent.hostspace` (the host workspace), :mod:`~lastgood.agent.guard`
(one agent per target: the lock, and targets no retry could fix), :mod:`~lastgood.agent.placing`
(one version onto the target), :mod:`~lastgood.agent.health` (host checks),
:mod:`~lastgood.agent.follow` (the SDK follower that places), :mod:`~lastgood.agent.runner`
(the process).
"""

from lastgood.agent.hostspace import AgentPlan, default_state, parse_target, plan_agent
from lastgood.agent.runner import Agent

__all__ = ["Agent", "AgentPlan", "default_state", "parse_target", "plan_agent"]
