"""``lastgood serve`` and ``lastgood token``: run the server, manage who may use it."""

from __future__ import annotations

import signal
from typing import Any

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.errors import UsageError
from lastgood.refs import LARGEST_VERSION
from lastgood.tokens import ROLES


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8470, show_default=True, type=Digits(0, 65535, what="a port"), help="Port."
)
@click.option(
    "--poll",
    default=0.02,
    show_default=True,
    type=click.FloatRange(0.005, 10),
    help="Seconds between looks at served targets switched by other processes (on PostgreSQL "
    "switches arrive at once by LISTEN/NOTIFY and this is the fallback).",
)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every request to stderr: client, method, path, status, duration (never a query, "
    "a token or a body).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Server processes sharing the port (1 to 64). More than one helps when the CPU of one "
    "process is the limit: many config reads, thousands of consumers; about one per core.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="Serve HTTPS with this PEM certificate (chain), with --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, readable=True),
    help="The certificate's PEM private key (not encrypted).",
)
@pass_app
def serve(
    app: AppContext,
    host: str,
    port: int,
    poll: float,
    access_log: bool,
    workers: int,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Run the server: JSON API, live config for applications, metrics and the web page.

    Needs the server extra: pip install 'lastgood[server]'. Every API call needs a token
    ('lastgood token create'); /healthz and /metrics do not.

    \b
    Example:
      lastgood token create --name ops --role admin
      lastgood serve --host 0.0.0.0 --port 8470
      lastgood serve --host 0.0.0.0 --workers 2
      lastgood serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    """
    from lastgood.server import require_extra

    require_extra()
    check_tls(tls_cert, tls_key)
    from lastgood.operations.tokens import list_tokens
    from lastgood.server.workers import check_count

    check_count(workers)
    if not list_tokens(app.project()):
        r.info(
            "no API tokens yet: create one with 'lastgood token create --name NAME --role admin'"
        )
    options = {"access": access_log, "ssl_certfile": tls_cert, "ssl_keyfile": tls_key}
    if workers == 1:
        _serve_one(app, host, port, poll, options)
    else:
        _serve_workers(app, workers, host, port, poll, options)


def _address(host: str, port: int, tls: bool) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown_host}:{port}"


def _serve_one(app: AppContext, host: str, port: int, poll: float, options: dict[str, Any]) -> None:
    """One process: the server runs in this one."""
    from lastgood.server import runner
    from lastgood.server.app import create_app

    web_app = create_app(app.project(), poll=poll)
    where = _address(host, port, bool(options["ssl_certfile"]))
    r.info(f"lastgood serving {where} (API docs at /docs, page at /)")
    _stopped(where, runner.run(web_app, host=host, port=port, **options))


def _serve_workers(
    app: AppContext, workers: int, host: str, port: int, poll: float, options: dict[str, Any]
) -> None:
    """``workers`` forked processes on one socket bound here (see lastgood.server.workers)."""
    from lastgood.server import workers as pool
    from lastgood.server.siblings import Board

    sock = pool.bind(host, port)
    board = Board(workers)  # before the fork: every worker shares it
    where = _address(host, sock.getsockname()[1], bool(options["ssl_certfile"]))
    r.info(f"lastgood serving {where} with {workers} workers (API docs at /docs, page at /)")
    app.reopen()  # every worker opens its own store connections, never the parent's

    def work() -> int:
        from lastgood.server import runner
        from lastgood.server.app import create_app

        web_app = create_app(app.project(), poll=poll, wake_others=pool.wake_siblings,
                             board=board)  # fmt: skip
        runner.run(web_app, host=host, port=port, sock=sock, **options)
        return 0

    _stopped(where, pool.Supervisor(workers, work, board).run())


def _stopped(where: str, signum: int | None) -> None:
    """Say that the server stopped, and on which signal; the command then exits 0, with one
    process as with ``--workers``.

    A stop asked for with SIGTERM or SIGINT and carried out (held reads answered, a deploy
    closed) is the server doing its job, not a failure, so it ends as a success. systemd
    counts an exit status of 143 as a failure (only death by the signal itself, or status 0,
    is a clean stop), so every ``systemctl stop`` would leave the unit failed unless it said
    ``SuccessExitStatus=143``; Kubernetes, Docker and supervisord read 0 as a clean exit too.
    One status for both modes means that adding ``--workers`` changes nothing a supervisor
    sees. The line tells a stop that was asked for from a crash in the logs."""
    how = f" on {signal.Signals(signum).name}" if signum is not None else ""
    r.info(f"lastgood stopped serving {where}{how}")


def check_tls(cert: str | None, key: str | None) -> None:
    """Load the pair once before serving, so a wrong file is a clear error, not a traceback
    from inside uvicorn."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        missing, given = ("--tls-key", "--tls-cert") if key is None else ("--tls-cert", "--tls-key")
        raise UsageError(f"{given} needs {missing} too",
                         hint="give both the certificate and its private key")  # fmt: skip
    import ssl

    def no_password() -> str:  # asked only for an encrypted key: never prompt on a terminal
        raise UsageError(
            f"--tls-key {key} is encrypted, and the server cannot unlock it unattended",
            hint=f"decrypt it first: openssl pkey -in {key} -out key.pem",
        )

    for option, path, marker, what in (
        ("--tls-cert", cert, b"-----BEGIN CERTIFICATE-----", "certificate"),
        ("--tls-key", key, b"PRIVATE KEY-----", "private key"),
    ):
        try:
            with open(path, "rb") as pem:
                head = pem.read(1 << 20)
        except OSError as exc:
            raise UsageError(f"cannot read {option} {path}: {exc.strerror or exc}",
                             hint=f"make the {what} readable by this user") from None  # fmt: skip
        if marker not in head:
            raise UsageError(
                f"{option} {path} holds no PEM {what}",
                hint=f"give the {what} as PEM (text that starts with -----BEGIN)",
            )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=no_password)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        if reason == "KEY_VALUES_MISMATCH":
            reason = "the key is not the certificate's"
        raise UsageError(
            f"cannot serve HTTPS with --tls-cert {cert} and --tls-key {key}: {reason}",
            hint="give a PEM certificate and the unencrypted PEM key that matches it",
        ) from exc


@cli.group()
def token() -> None:
    """API tokens for the server: create, list, revoke. Only hashes are stored."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses it (recorded as the actor): "
              "visible characters, no spaces at either end, not 'lastgood'.")  # fmt: skip
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer reads; deployer also deploys, rolls back, checks, drills and opens "
              "change requests; approver also approves and rejects them; admin also manages "
              "tokens.")  # fmt: skip
@click.option("--env", "envs", multiple=True, metavar="ENV",
              help="Limit the role to this environment (repeatable; default: all).")  # fmt: skip
@json_option
@pass_app
def token_create(
    app: AppContext, name: str, role: str, envs: tuple[str, ...], as_json: bool
) -> None:
    """Create a token and print its secret once (stdout); it cannot be shown again.

    \b
    Example:
      lastgood token create --name ci --role deployer --env staging
      lastgood token create --name dana --role approver --env production
    """
    if app.server:
        data = app.remote().create_token(name, role, list(envs))
    else:
        from lastgood.operations.tokens import create_token

        record, secret = create_token(app.project(), name=name, role=role, envs=list(envs))
        data = {**record.to_json(), "token": secret}
    if as_json:
        r.emit_json(data)
        return
    scope = ", ".join(envs) or "all environments"
    r.info(f"token #{data['id']} {data['name']!r}: {role} on {scope}. Keep it secret; it is "
           "shown only now:")  # fmt: skip
    r.out(data["token"])


@token.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@json_option
@pass_app
def token_list(app: AppContext, show_all: bool, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    if app.server:
        found = app.remote().tokens(show_all)
    else:
        from lastgood.operations.tokens import list_tokens

        found = [t.to_json() for t in list_tokens(app.project(), include_revoked=show_all)]
    if as_json:
        r.emit_json(found)
        return
    rows = [
        [f"#{t['id']}", t["name"], t["role"], ", ".join(t["envs"]) or "all", t["created_by"],
         r.when(t["created_at"]), f"revoked {r.when(t['revoked_at'])}" if t["revoked_at"] else ""]
        for t in found
    ]  # fmt: skip
    r.out(r.table(["id", "name", "role", "envs", "by", "created", ""], rows))


@token.command("revoke")
@click.argument("token_id", type=Digits(1, LARGEST_VERSION, what="a token id"))
@pass_app
def token_revoke(app: AppContext, token_id: int) -> None:
    """Revoke token ID at once (the server stops accepting it within 5 s)."""
    if app.server:
        data = app.remote().revoke_token(token_id)
    else:
        from lastgood.operations.tokens import revoke_token

        data = revoke_token(app.project(), token_id).to_json()
    r.info(f"revoked token #{data['id']} {data['name']!r}")
