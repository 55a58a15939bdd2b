"""The address of a lastgood server, ``http(s)://host[:port][/path]``: one parser for the SDK's
``url`` (:class:`lastgood.client.LiveConfig`) and the CLI's ``--server``.

Both refuse the same mistakes in the same words, each naming what to change: a scheme other
than http or https, a port that is 0 or not a number up to 65535, a query or a fragment, an IPv6
zone, a host that is not ASCII or that holds a character no name or address has. They differ in
one thing, a user name and password before the host: the SDK authenticates with its token and
refuses any ``@``; the CLI passes them on (to a proxy that asks for them) and masks the password
in every message. A URL that may hold a password is never echoed unmasked.

Light on purpose: the SDK imports it, so it needs nothing beyond the standard library.
"""

from __future__ import annotations

import re
import string
from urllib.parse import SplitResult, urlsplit

from lastgood.errors import UsageError
from lastgood.record import Record
from lastgood.settings import mask_url

_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-._")
_HINT = "write it as http(s)://host[:port][/path], like http://127.0.0.1:8470"


class ServerAddress(Record):
    """Where a server answers: its host (an IPv6 address without brackets), the port written in
    the URL (None: the scheme's own), the path prefix a proxy may serve it under, and TLS."""

    host: str
    port: int | None
    path: str
    tls: bool


def parse_server_url(
    url: str, *, what: str = "the server URL", credentials: bool = False
) -> ServerAddress:
    """The address in ``url``, or UsageError saying what is wrong; ``what`` names the URL in the
    messages (``--server``). With ``credentials``, a user name and password may come before the
    host; without, any ``@`` is refused without echoing the URL, since what precedes it may be
    a password, and one holding ``/``, ``?`` or ``#`` would not even be parsed as one."""
    _check_credentials(url, what, credentials)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced or invalid [IPv6] host
        shown = "(not shown: it may hold a password)" if "@" in url else repr(_shown(url))
        raise UsageError(f"{what} {shown} is not a URL: {exc}", hint=_HINT) from None
    shown = repr(_shown(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        bare = "://" not in url and "@" not in url  # host:port without a scheme
        raise UsageError(f"{what} {shown} is not an http:// or https:// URL",
                         hint=f"write http://{url.strip()}" if bare else "it must be "
                         "http(s)://host[:port][/path], like http://127.0.0.1:8470")  # fmt: skip
    port = _port(parts, what, shown)
    if parts.query or parts.fragment:
        raise UsageError(
            f"{what} {shown} has a query or fragment",
            hint="give the address 'lastgood serve' answers on, like http://127.0.0.1:8470",
        )
    host = parts.hostname
    _check_host(host, what, shown)
    return ServerAddress(host, port, parts.path, parts.scheme == "https")


def _check_credentials(url: str, what: str, credentials: bool) -> None:
    if "@" not in url:
        return
    if not credentials:
        raise UsageError(
            f"{what} carries a user name or password (it has an '@'); not shown here",
            hint="remove them from the URL: the SDK authenticates with token= (or LASTGOOD_TOKEN)",
        )
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if "@" not in authority:  # a password cut where urlsplit would cut it: never echoed
        raise UsageError(
            f"{what} has an '@' after its host part (the URL is not shown here: it may hold a "
            "password)",
            hint="percent-encode '/', '?' and '#' in a user name or password (as %2F, %3F and %23)",
        )


def _shown(url: str) -> str:
    """The URL as a message may quote it: the password masked, at most 100 characters."""
    return mask_url(url).rstrip("/")[:100]


def _port(parts: SplitResult, what: str, shown: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = -1
    after_host = parts.netloc.rpartition("]")[2] if "[" in parts.netloc else ""
    if port == -1 or (after_host and not after_host.startswith(":")):
        raise UsageError(
            f"{what} {shown} has a port that is not a number from 1 to 65535", hint=_HINT
        )
    if port == 0:
        raise UsageError(f"{what} {shown} has port 0, which nothing listens on", hint=_HINT)
    return port


def _check_host(host: str, what: str, shown: str) -> None:
    """A bracketed IPv6 address (which urlsplit has checked) without a zone, or a name or IPv4
    address the resolver can be given as it is."""
    if ":" in host:
        if "%" in host:
            raise UsageError(
                f"{what} {shown} names an IPv6 zone, which lastgood does not support",
                hint="use the server's global address or a host name",
            )
        return
    if not host.isascii():
        raise UsageError(
            f"the host of {what} must be ASCII, got {host[:100]!r}",
            hint="write an internationalized name in its xn-- (IDNA) form",
        )
    odd = next((char for char in host if char not in _HOST_CHARS), None)
    try:
        if odd is not None:
            raise UnicodeError(f"it has {odd!r}, which no host name or address has")
        host.encode("idna")  # what the resolver will be given
    except UnicodeError as exc:
        reason = str(exc) if odd is not None else "a host name part is empty or over 63 characters"
        raise UsageError(
            f"the host {host[:100]!r} of {what} is not a valid host name: {reason}",
            hint="a name is dot-separated parts of 1 to 63 letters, digits or '-'; an "
            "address is like 127.0.0.1 or [::1]",
        ) from None
