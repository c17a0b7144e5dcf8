"""TLS as the kubeconfig says, against a loopback HTTPS API server: its CA (as data), the name its
certificate is checked against, a client certificate from ``-data`` fields (never left on disk),
and ``insecure-skip-tls-verify``."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import kube
from common.errors import KubernetesUnavailableError
from common.runclient import RunRef
from tests.support.tls import Certificates, make_certificates

REF = RunRef("PipelineRun", "ci", "build-1")


def client_certificate(common_name: str) -> tuple[bytes, bytes]:
    """A self-signed client certificate and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class HttpsApiServer:
    """Answers every request with a run; requires a client certificate when ``client_ca`` is given
    and notes the common name of each one it was shown."""

    certificates: Certificates
    client_ca: bytes | None = None

    def __post_init__(self) -> None:
        self.clients: list[str] = []
        context = self.certificates.server_context()
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.client_ca.decode())
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer: Any = self.connection.getpeercert()
                if peer:
                    server.clients.append(dict(item[0] for item in peer["subject"])["commonName"])
                data = json.dumps({"kind": "PipelineRun"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"), "kube.test")


@pytest.fixture
def client_pem() -> tuple[bytes, bytes]:
    return client_certificate("ci-bot")


@pytest.fixture
def https(certificates: Certificates, client_pem: tuple[bytes, bytes]) -> Iterator[HttpsApiServer]:
    server = HttpsApiServer(certificates, client_ca=client_pem[0])
    yield server
    server.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(path: Path, cluster: str, user: str) -> str:
    path.write_text(
        f"""
clusters: [{{name: c, cluster: {cluster}}}]
users: [{{name: u, user: {user}}}]
contexts: [{{name: main, context: {{cluster: c, user: u}}}}]
current-context: main
""",
        encoding="utf-8",
    )
    return str(path)


def test_the_server_is_verified_by_the_kubeconfigs_ca_and_sees_the_client_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, https: HttpsApiServer, client_pem: tuple[bytes, bytes]
) -> None:
    own_tmp = tmp_path / "tmp"
    own_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(own_tmp))
    ca = b64(https.certificates.ca_file.read_bytes())
    path = kubeconfig(
        tmp_path / "config",
        f'{{server: "https://127.0.0.1:{https.port}", certificate-authority-data: {ca}, '
        "tls-server-name: kube.test}",
        f"{{client-certificate-data: {b64(client_pem[0])}, client-key-data: {b64(client_pem[1])}}}",
    )
    assert kube.connect(kubeconfig=path).get(REF) == {"kind": "PipelineRun"}
    assert https.clients == ["ci-bot"]
    assert list(own_tmp.iterdir()) == [], "the client key's temporary file is gone once loaded"


def test_a_certificate_for_another_name_is_refused(
    tmp_path: Path, https: HttpsApiServer, client_pem: tuple[bytes, bytes]
) -> None:
    ca = b64(https.certificates.ca_file.read_bytes())
    path = kubeconfig(
        tmp_path / "config",
        f'{{server: "https://127.0.0.1:{https.port}", certificate-authority-data: {ca}}}',
        f"{{client-certificate-data: {b64(client_pem[0])}, client-key-data: {b64(client_pem[1])}}}",
    )
    with pytest.raises(KubernetesUnavailableError, match="unreachable"):
        kube.connect(kubeconfig=path).get(REF)
    assert https.clients == []


def test_an_unknown_ca_is_refused_unless_verification_is_skipped(
    tmp_path: Path, certificates: Certificates
) -> None:
    server = HttpsApiServer(certificates)
    try:
        untrusted = kubeconfig(
            tmp_path / "config", f'{{server: "https://127.0.0.1:{server.port}"}}', "{token: t}"
        )
        with pytest.raises(KubernetesUnavailableError, match="unreachable"):
            kube.connect(kubeconfig=untrusted).get(REF)
        insecure = kubeconfig(
            tmp_path / "insecure",
            f'{{server: "https://127.0.0.1:{server.port}", insecure-skip-tls-verify: true}}',
            "{token: t}",
        )
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert kube.connect(kubeconfig=insecure).get(REF) == {"kind": "PipelineRun"}
    finally:
        server.close()


def test_a_client_key_that_does_not_match_is_a_configuration_error(
    tmp_path: Path, client_pem: tuple[bytes, bytes]
) -> None:
    _, other_key = client_certificate("someone-else")
    path = kubeconfig(
        tmp_path / "config",
        '{server: "https://127.0.0.1:1"}',
        f"{{client-certificate-data: {b64(client_pem[0])}, client-key-data: {b64(other_key)}}}",
    )
    with pytest.raises(KubernetesUnavailableError, match=r"TLS settings .* cannot be used"):
        kube.connect(kubeconfig=path)
