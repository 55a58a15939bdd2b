"""HTTPS end to end: ``lastgood serve --tls-cert/--tls-key`` with a certificate from a throwaway
CA (trustme), the SDK following a rollback over it, the CLI acting through it, the page's
cookie marked Secure, and clear refusals of an untrusted server and of a bad certificate pair."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from lastgood.client import LiveConfig
from lastgood.errors import ServerError
from tests.conftest import Workspace
from tests.serving import Server


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """A CA and a certificate it signed for 127.0.0.1, as PEM files."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: str(tmp_path / f"{name}.pem") for name in ("ca", "cert", "key", "other")}
    ca.cert_pem.write_to_path(paths["ca"])
    issued.cert_chain_pems[0].write_to_path(paths["cert"])
    issued.private_key_pem.write_to_path(paths["key"])
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(paths["other"])
    return paths


def test_the_sdk_the_cli_and_the_page_over_https(
    workspace: Callable[..., Workspace],
    serve: Callable[..., Server],
    pki: dict[str, str],
    tmp_path: Path,
) -> None:
    ws = workspace(target="served", bake="0.3s")
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    server = serve(ws, "--tls-cert", pki["cert"], "--tls-key", pki["key"], ca=pki["ca"])
    assert server.url.startswith("https://")
    viewer, deployer = server.token("viewer"), server.token("deployer")
    trusted = ssl.create_default_context(cafile=pki["ca"])

    with LiveConfig(
        server.url, "staging", token=viewer, cache_dir=tmp_path, verify=trusted
    ) as live:
        assert live.version == 1 and live.source == "server"
        ws.healthy("two")
        assert ws.run("deploy", "staging", "-m", "second").returncode == 0
        assert live.wait_for_version(2).get("scoring/thresholds.yaml")["marker"] == "two"
        through = ws.run("--server", server.url, "--token", deployer, "rollback", "staging",
                         "-m", "over https", env={"SSL_CERT_FILE": pki["ca"]})  # fmt: skip
        assert through.returncode == 0, through.stderr
        assert "v1" in through.stdout
        assert live.wait_for_version(1).get("scoring/thresholds.yaml")["marker"] == "one"

    with pytest.raises(ServerError, match="certificate this process does not trust") as refused:
        LiveConfig(server.url, "staging", token=viewer, cache=False)  # the system's CAs only
    assert viewer not in str(refused.value) and "SSL_CERT_FILE" in str(refused.value.hint)
    untrusted = ws.run("--server", server.url, "--token", deployer, "status", "staging")
    assert untrusted.returncode == 1
    assert "does not trust" in untrusted.stderr and "SSL_CERT_FILE" in untrusted.stderr
    assert deployer not in untrusted.stderr and "Traceback" not in untrusted.stderr

    with server.client() as http:
        signed_in = http.post("/login", data={"token": viewer})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_serve_refuses_a_certificate_pair_it_cannot_use(
    workspace: Callable[..., Workspace], pki: dict[str, str], tmp_path: Path
) -> None:
    ws = workspace(target="served")
    encrypted = tmp_path / "encrypted.pem"
    plain = serialization.load_pem_private_key(Path(pki["key"]).read_bytes(), password=None)
    encrypted.write_bytes(plain.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.PKCS8,
                          serialization.BestAvailableEncryption(b"passphrase")))  # fmt: skip
    cases = [
        (["--tls-cert", pki["cert"]], "--tls-cert needs --tls-key too"),
        (["--tls-cert", pki["key"], "--tls-key", pki["key"]], "holds no PEM certificate"),
        (["--tls-cert", pki["cert"], "--tls-key", pki["cert"]], "holds no PEM private key"),
        (
            ["--tls-cert", pki["cert"], "--tls-key", pki["other"]],
            "the key is not the certificate's",
        ),
        (["--tls-cert", pki["cert"], "--tls-key", str(encrypted)], "is encrypted"),
    ]
    for options, message in cases:
        done = ws.run("serve", "--port", "0", *options, timeout=20)
        assert done.returncode == 2, (options, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert "hint:" in done.stderr
