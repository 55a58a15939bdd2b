"""The TLS context of the requests lastgood makes itself (``http`` targets and checks,
tracked documents), built once per process.

httpx builds a new :class:`ssl.SSLContext` for every client it opens, reading the whole CA
bundle each time: about 25 ms of CPU a request, which one deploy to an ``http`` target paid a
dozen times over (its pushes and read-backs) and a watcher paid at every round of an ``http``
check. The context here is the one httpx's ``verify=True`` stands for (certifi's bundle, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when the client trusts the environment), so nothing is
verified differently; one context may serve many clients and threads.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def verifying(trust_env: bool = True) -> ssl.SSLContext:
    """The context for ``httpx.Client(verify=...)``; reads the CA bundle the first time it is
    asked for with ``trust_env``, never again. Writes nothing."""
    import httpx

    return httpx.create_ssl_context(trust_env=trust_env)
