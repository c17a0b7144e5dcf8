"""TLS as the kubeconfig says, against a loopback HTTPS API server: its CA (as data), the name its
certificate is checked against, a client certificate from ``-data`` fields (never left on disk),
and ``insecure-skip-tls-verify``."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import urllib3

from common import kube
from common.errors import KubernetesUnavailableError
from common.runclient import RunRef
from tests.support.standins.loopback import LoopbackServer, LoopbackStandIn
from tests.support.tls import Certificates, client_certificate, make_certificates

REF = RunRef("PipelineRun", "ci", "build-1")


class _TlsServer(LoopbackServer):
    def get_request(self) -> tuple[Any, Any]:
        """Each connection speaks TLS, as the stand-in's ``context`` says."""
        sock, address = self.socket.accept()
        return self.standin.context.wrap_socket(sock, server_side=True), address


class _Handler(BaseHTTPRequestHandler):
    server: _TlsServer

    def do_GET(self) -> None:
        peer: Any = self.connection.getpeercert()
        if peer:
            self.server.standin.clients.append(dict(item[0] for item in peer["subject"])["commonName"])
        data = json.dumps({"kind": "PipelineRun"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class HttpsApiServer(LoopbackStandIn):
    """Answers every request with a run; requires a client certificate when ``client_ca`` is given
    and notes the common name of each one it was shown."""

    handler = _Handler
    server = _TlsServer

    def __init__(self, certificates: Certificates, client_ca: bytes | None = None) -> None:
        self.certificates = certificates
        self.clients: list[str] = []
        self.context = certificates.server_context()
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(cadata=client_ca.decode())

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``, while it runs."""
        return self.origin.replace("http://", "https://", 1)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"), "kube.test")


@pytest.fixture
def client_pem() -> tuple[bytes, bytes]:
    return client_certificate("ci-bot")


@pytest.fixture
def https(certificates: Certificates, client_pem: tuple[bytes, bytes]) -> Iterator[HttpsApiServer]:
    with HttpsApiServer(certificates, client_ca=client_pem[0]) as server:
        yield server


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
        f'{{server: "{https.url}", certificate-authority-data: {ca}, tls-server-name: kube.test}}',
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
        f'{{server: "{https.url}", certificate-authority-data: {ca}}}',
        f"{{client-certificate-data: {b64(client_pem[0])}, client-key-data: {b64(client_pem[1])}}}",
    )
    with pytest.raises(KubernetesUnavailableError, match="unreachable"):
        kube.connect(kubeconfig=path).get(REF)
    assert https.clients == []


def test_an_unknown_ca_is_refused_unless_verification_is_skipped(
    tmp_path: Path, certificates: Certificates
) -> None:
    with HttpsApiServer(certificates) as server:
        untrusted = kubeconfig(tmp_path / "config", f'{{server: "{server.url}"}}', "{token: t}")
        with pytest.raises(KubernetesUnavailableError, match="unreachable"):
            kube.connect(kubeconfig=untrusted).get(REF)
        insecure = kubeconfig(
            tmp_path / "insecure",
            f'{{server: "{server.url}", insecure-skip-tls-verify: true}}',
            "{token: t}",
        )
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert kube.connect(kubeconfig=insecure).get(REF) == {"kind": "PipelineRun"}


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
