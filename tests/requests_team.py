"""The production environment the change-request tests through a server share: it takes new
versions only with the approval of the leads, lee and sam, and goes live through a directory
target (``../prod``) with no bake and the check that reads health.txt.

``tests/test_server_requests.py`` and ``tests/test_web_requests.py`` each add what they test on
top: a second approval, a freeze, a staging environment.
"""

from __future__ import annotations

from tests.conftest import CHECK_OK


def production_config(approval: str = "") -> str:
    """``[groups]`` and ``[env.production]`` for a lastgood.toml, ending inside
    ``[env.production.approval]``: ``approval`` adds lines to that table (``required = 2``),
    and whatever follows should open a table of its own."""
    return f"""
[groups]
leads = ["lee", "sam"]

[env.production]
target = {{ type = "directory", path = "../prod", keep = 5 }}
bake = "0s"
interval = "10ms"

[[env.production.check]]
name = "health-file-ok"
type = "command"
run = '{CHECK_OK}'
timeout = "5s"

[env.production.approval]
approvers = ["leads"]
{approval}"""
