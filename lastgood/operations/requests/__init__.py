"""Change requests: propose a version for an environment, route it to its approvers, approve or
reject it, and apply it through the normal deploy.

A request names one exact version, bound to its content hash, and the version the environment
served when it was opened (its *base*). Approvals name both hashes (see
:mod:`lastgood.approval`), so they cover exactly what the approvers saw: content that changes
dismisses them, content that comes back to what was approved brings them back. Applying re-checks
everything right before the deploy: the content, the base (an environment that moved on makes
the request *stale*: it needs a fresh look) and the approvals; then the normal deploy runs —
validate, preflight, bake, automatic rollback — and the request records how it ended.

Rollback never passes through here: rolling back to a version that was good stays one command,
whatever an environment requires for new changes.

The verbs live in one module per step — :mod:`.propose`, :mod:`.review`, :mod:`.apply`,
:mod:`.reading`, :mod:`.watcher` — over :mod:`.view` (how a request is seen, and what every
step shares) and :mod:`.standing` (a request settled or expired before a step); the edges import
them from here.
"""

from lastgood.operations.requests.apply import apply_request
from lastgood.operations.requests.propose import open_request, update_request, withdraw_request
from lastgood.operations.requests.reading import (
    list_requests,
    request_diff,
    request_env,
    show_request,
)
from lastgood.operations.requests.review import SHOWN_HASH, review_request, sign_off_request
from lastgood.operations.requests.view import MAX_TEXT, RequestView
from lastgood.operations.requests.watcher import apply_due_requests, remind_waiting

__all__ = [
    "MAX_TEXT",
    "SHOWN_HASH",
    "RequestView",
    "apply_due_requests",
    "apply_request",
    "list_requests",
    "open_request",
    "remind_waiting",
    "request_diff",
    "request_env",
    "review_request",
    "show_request",
    "sign_off_request",
    "update_request",
    "withdraw_request",
]
