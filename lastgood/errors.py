"""Every error lastgood raises on purpose, in one tree.

Each class carries the CLI exit code and the HTTP status it maps to, so the edges (the CLI
today, the server later) translate an error in one place and never guess::

    LastgoodError                      exit 1  (500)  unexpected, or an error with no better home
    ├── UsageError                     exit 2  (400)  bad command line or reference
    │   └── NotFoundError              exit 2  (404)  no such version / environment / file
    ├── ConfigError                    exit 2  (400)  lastgood.toml or a setting is wrong
    ├── StoreError                     exit 1  (503)  the store cannot be reached or is damaged
    ├── TargetError                    exit 1  (502)  a target failed to stage, activate or read
    │   └── TargetTimeoutError         exit 1  (502)  no answer in time; what started may still land
    ├── LeaseLostError                 exit 1  (409)  another process broke our lease
    ├── DocumentError                  exit 1  (502)  a tracked document could not be read
    ├── ServerError                    exit 1  (503)  the lastgood server cannot be reached
    └── RefusedError                   exit 5  (409)  refused before anything live changed
        ├── RawDataError               exit 5  (422)  a file looks like data, is too big, or escapes
        ├── ValidationError            exit 5  (422)  syntax or JSON Schema failure
        ├── PreflightError             exit 5  (422)  a preflight check failed on the candidate
        ├── StagingError               exit 5  (507)  the candidate could not be staged (disk full)
        ├── SwitchFailedError          exit 5  (502)  the switch failed; read back, nothing changed
        ├── BaselineError              exit 5  (409)  the checks already fail on what is live now
        ├── DamagedCopyError           exit 5  (409)  a kept release is damaged; no store to mend it
        ├── QuarantinedError           exit 5  (409)  the version failed here before; use --force
        ├── LockedError                exit 5  (423)  another deploy or rollback holds the lease
        └── AuthError                  exit 5  (401)  no token, or an unknown or revoked one
            └── ForbiddenError         exit 5  (403)  the token's role or scope does not allow it

Outcomes that are not errors (a deploy that failed its checks and was rolled back, exit 3; a
restore that could not be verified, exit 4) are results, see ``lastgood.outcome``.

Messages say what failed, quote the values, and say what to run next.
"""

from __future__ import annotations


class LastgoodError(Exception):
    """Base of every error lastgood raises deliberately."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(LastgoodError):
    """The command line or an argument is wrong (a bad reference, a missing option)."""

    exit_code = 2
    http_status = 400


class NotFoundError(UsageError):
    """A named thing (version, environment, file) does not exist."""

    http_status = 404


class GitError(UsageError):
    """git failed, is not installed, or the workspace is not in a git repository."""


class ConfigError(LastgoodError):
    """``lastgood.toml`` or a setting is missing, malformed or inconsistent."""

    exit_code = 2
    http_status = 400


class StoreError(LastgoodError):
    """The store cannot be opened, migrated or queried."""

    exit_code = 1
    http_status = 503


class TargetError(LastgoodError):
    """A target failed to stage, activate or report what it serves."""

    exit_code = 1
    http_status = 502


class TargetTimeoutError(TargetError):
    """A target's command or request gave no answer within its timeout and was stopped.

    Unlike a clean failure (an error answer, a non-zero exit), what it started may still finish
    in the tool afterwards, so a deploy that times out never claims that nothing live changed."""


class LeaseLostError(LastgoodError):
    """Our lease was broken (``--force``) or expired while we worked; we stop touching it."""

    exit_code = 1
    http_status = 409


class DocumentError(LastgoodError):
    """A tracked document (``[[watch.document]]``) could not be read or normalized: a missing
    file or folder, a URL that failed or timed out, or content that is not valid JSON.

    Not a :class:`TargetError`: nothing that goes live is involved, and the code that handles
    a failing target (reconciliation) must never mistake a document for one. The previous
    version stays the one compared against, so nothing is alerted until the document reads
    again."""

    exit_code = 1
    http_status = 502


class RefusedError(LastgoodError):
    """Refused before anything live changed."""

    exit_code = 5
    http_status = 409


class ApprovalRequiredError(RefusedError):
    """The environment takes changes only through an approved change request."""


class FrozenError(RefusedError):
    """The environment is inside a freeze, or outside its change windows: no deploy, drill or
    request application now (a rollback is never held)."""


class RequestError(RefusedError):
    """A change request cannot take this step now: not approved, stale, closed, expired, or
    the person may not approve it."""


class StaleBaseError(RequestError):
    """Found under the environment's lease: it no longer serves what the request being applied
    was based on (something went live, or was rolled back, since the request was checked)."""


class RawDataError(RefusedError):
    """A file looks like raw data, is too large, or points outside the workspace."""

    http_status = 422


class ValidationError(RefusedError):
    """A configuration file does not parse or does not match its JSON Schema."""

    http_status = 422


class PreflightError(RefusedError):
    """A preflight check failed against the staged candidate."""

    http_status = 422


class StagingError(RefusedError):
    """The candidate could not be put in place beside the live version (a full disk, a
    permission, a file in the way); staging never touches what is live."""

    http_status = 507


class SwitchFailedError(RefusedError):
    """A deploy's switch failed cleanly (the tool answered an error, the activate command exited
    non-zero, the live link could not be replaced) and reading the target back shows that what
    was live before is still live. The deploy is recorded ``failed`` (it did fail: it is not
    a crash), and exits 5 like every other "nothing live changed"."""

    http_status = 502


class BaselineError(RefusedError):
    """The environment's checks already fail against what is live, before any switch: the new
    version cannot be judged, so nothing is switched and no version is blamed."""


class DamagedCopyError(RefusedError):
    """A target's kept copy of a release no longer matches it, and nothing can repair it here
    (``rollback --offline`` has no store): refused before anything in the target changed."""


class QuarantinedError(RefusedError):
    """The version failed its checks in this environment before."""


class LockedError(RefusedError):
    """Another deploy or rollback holds this environment's lease."""

    http_status = 423


class AuthError(RefusedError):
    """The request carries no API token, or one the server does not know (or revoked)."""

    http_status = 401


class ForbiddenError(AuthError):
    """The token is valid but its role or environments do not allow this action."""

    http_status = 403


class ServerError(LastgoodError):
    """The lastgood server could not be reached, or answered with something that is not lastgood."""

    exit_code = 1
    http_status = 503
