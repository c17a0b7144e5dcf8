"""Which API server and credentials ``common.kube`` uses: a pod's service account, kubeconfig files
merged like kubectl's, and the ``kubernetes`` library's loader only for plugin logins."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import kube, kube_config
from common.errors import KubernetesUnavailableError
from common.kube_config import BearerToken, Impersonation, KubeConfig, TokenFile
from tests.support.tls import make_certificates

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def header(config: KubeConfig, context: str | None = None) -> str | None:
    authorization = config.login(context).authorization
    return authorization.header() if authorization else None


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real CA certificate: a client is built with its TLS settings loaded."""
    return make_certificates(tmp_path_factory.mktemp("ca"), "kube.test").ca_file.read_text()


@pytest.fixture(autouse=True)
def outside_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT", tmp_path / "no-service-account")


# -- kubeconfig files -------------------------------------------------------------------------


def test_kubeconfig_files_are_merged_like_kubectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_pem: str
) -> None:
    """The first file to define a name (or the current context) wins; missing files are skipped;
    relative paths are relative to the file that holds them."""
    first = write(
        tmp_path / "home" / "config",
        """
clusters: [{name: shared, cluster: {server: "https://first.example:6443/"}}]
users: [{name: me, user: {token: first-token}}]
contexts: [{name: main, context: {cluster: shared, user: me, namespace: team-a}}]
current-context: main
""",
    )
    second = write(
        tmp_path / "team" / "config",
        """
clusters:
- {name: shared, cluster: {server: "https://second.example"}}
- {name: other, cluster: {server: "https://other.example:6443", certificate-authority: certs/ca.pem}}
users:
- {name: me, user: {token: second-token}}
- {name: robot, user: {tokenFile: robot.token}}
contexts:
- {name: main, context: {cluster: other, user: robot}}
- {name: robots, context: {cluster: other, user: robot}}
current-context: robots
""",
    )
    write(tmp_path / "team" / "robot.token", "robot-token\n")
    write(tmp_path / "team" / "certs" / "ca.pem", ca_pem)
    paths = os.pathsep.join([str(first), str(tmp_path / "absent"), str(second)])
    monkeypatch.setenv("KUBECONFIG", paths)

    config = KubeConfig.load(kube_config.kubeconfig_paths())
    login = config.login(None)
    assert login.server == "https://first.example:6443"
    assert header(config) == "Bearer first-token"
    assert kube.current_namespace() == "team-a"

    robots = config.login("robots")
    assert robots.server == "https://other.example:6443"
    assert robots.ca == tmp_path / "team" / "certs" / "ca.pem"
    assert header(config, "robots") == "Bearer robot-token"
    assert kube.current_namespace("robots") == "default"
    assert kube.connect("robots").server == "https://other.example:6443"


def test_no_kubeconfig_or_an_unknown_context_is_no_configuration(tmp_path: Path) -> None:
    with pytest.raises(KubernetesUnavailableError, match="no Kubernetes configuration: no kubeconfig file"):
        kube.connect(kubeconfig=str(tmp_path / "absent"))
    path = write(
        tmp_path / "config",
        """
clusters: [{name: c, cluster: {server: "https://c.example"}}]
contexts: [{name: main, context: {cluster: c}}]
""",
    )
    with pytest.raises(KubernetesUnavailableError, match="sets no current-context"):
        kube.connect(kubeconfig=str(path))
    with pytest.raises(KubernetesUnavailableError, match="context 'staging' is not in the kubeconfig"):
        kube.connect("staging", kubeconfig=str(path))
    assert kube.connect("main", kubeconfig=str(path)).server == "https://c.example"


def test_tls_settings_and_certificate_data(tmp_path: Path) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    path = write(
        tmp_path / "config",
        f"""
clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: {b64("CA PEM")}
    certificate-authority: ignored.pem
    tls-server-name: kubernetes.default
    proxy-url: http://proxy.example:3128
- name: lab
  cluster: {{server: "https://lab.example", insecure-skip-tls-verify: true}}
users:
- name: admin
  user:
    client-certificate-data: {b64("CERT PEM")}
    client-key-data: {b64("KEY PEM")}
- name: files
  user: {{client-certificate: admin.crt, client-key: admin.key}}
contexts:
- {{name: main, context: {{cluster: c, user: admin}}}}
- {{name: lab, context: {{cluster: lab, user: files}}}}
current-context: main
""",
    )
    config = KubeConfig.load(str(path))
    login = config.login(None)
    assert (login.ca, login.client_certificate, login.client_key) == (b"CA PEM", b"CERT PEM", b"KEY PEM")
    assert (login.verify, login.tls_server_name, login.proxy) == (
        True,
        "kubernetes.default",
        "http://proxy.example:3128",
    )
    assert login.authorization is None
    assert "KEY PEM" not in repr(login)
    lab = config.login("lab")
    assert (lab.verify, lab.ca) == (False, None)
    assert (lab.client_certificate, lab.client_key) == (tmp_path / "admin.crt", tmp_path / "admin.key")


def test_certificate_data_that_is_not_base64_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        """
clusters: [{name: c, cluster: {server: "https://c.example", certificate-authority-data: "not base64!"}}]
contexts: [{name: main, context: {cluster: c}}]
current-context: main
""",
    )
    with pytest.raises(KubernetesUnavailableError, match=r"certificate-authority-data .* is not base64"):
        KubeConfig.load(str(path)).login(None)


IMPERSONATING = """
clusters: [{name: c, cluster: {server: "https://c.example"}}]
users:
- name: admin
  user:
    token: t
    as: jane
    as-groups: [dev, ops]
    as-uid: "42"
    as-user-extra: {scopes: [read, write], team: web}
- {name: groups-only, user: {token: t, as-groups: [dev]}}
contexts:
- {name: main, context: {cluster: c, user: admin}}
- {name: broken, context: {cluster: c, user: groups-only}}
current-context: main
"""


def test_impersonation_comes_from_the_kubeconfig_user_or_the_command_line(tmp_path: Path) -> None:
    path = str(write(tmp_path / "config", IMPERSONATING))
    assert kube.connect(kubeconfig=path).impersonating == Impersonation(
        "jane", ("dev", "ops"), uid="42", extra=(("scopes", "read"), ("scopes", "write"), ("team", "web"))
    )
    assert kube.connect(kubeconfig=path, impersonate=Impersonation("bob")).impersonating == Impersonation(
        "bob"
    )
    with pytest.raises(KubernetesUnavailableError, match="as-groups without as"):
        kube.connect("broken", kubeconfig=path)


def test_a_token_file_is_read_again_when_it_rotates(tmp_path: Path) -> None:
    token = write(tmp_path / "token", "one\n")
    reader = TokenFile(token)
    assert reader.header() == "Bearer one"
    os.replace(write(tmp_path / "token.new", "two"), token)  # an atomic rotation: a new file
    assert reader.header() == "Bearer two"
    token.unlink()
    with pytest.raises(KubernetesUnavailableError, match="cannot read the token file"):
        reader.header()
    assert "one" not in repr(reader)
    assert "secret" not in repr(BearerToken("secret"))


# -- a pod's service account ------------------------------------------------------------------


def project(service_account: Path, version: str, token: str, ca_pem: str) -> None:
    """What the kubelet does for a projected volume: a new folder, then ``..data`` swapped to it."""
    folder = service_account / f"..{version}"
    write(folder / "token", token)
    write(folder / "ca.crt", ca_pem)
    write(folder / "namespace", "builds")
    swap = service_account / "..data_tmp"
    swap.symlink_to(folder.name)
    os.replace(swap, service_account / "..data")
    for name in ("token", "ca.crt", "namespace"):
        if not (service_account / name).is_symlink():
            (service_account / name).symlink_to(f"..data/{name}")


def in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str, ca_pem: str) -> Path:
    """A pod's view: its service account's token ``first`` projected, and the API server's Service
    at ``host``, port 443. Returns the service account's folder."""
    service_account = tmp_path / "serviceaccount"
    project(service_account, "2026_01", "first", ca_pem)
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT", service_account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return service_account


def test_in_a_pod_the_service_account_is_used_and_its_token_follows_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_pem: str
) -> None:
    service_account = in_a_pod(monkeypatch, tmp_path, "fd00::1", ca_pem)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))

    login = kube_config.in_cluster()
    assert login is not None
    assert login.server == "https://[fd00::1]:443"
    assert login.ca == service_account / "ca.crt"
    assert login.authorization is not None
    assert login.authorization.header() == "Bearer first"
    project(service_account, "2026_02", "rotated", ca_pem)
    assert login.authorization.header() == "Bearer rotated"
    assert kube.current_namespace() == "builds"
    assert kube.connect().server == "https://[fd00::1]:443"


def test_an_explicit_kubeconfig_or_context_is_used_even_in_a_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_pem: str
) -> None:
    in_a_pod(monkeypatch, tmp_path, "10.96.0.1", ca_pem)
    path = str(write(tmp_path / "config", IMPERSONATING))
    assert kube.connect(kubeconfig=path).server == "https://c.example"
    assert kube.current_namespace(kubeconfig=path) == "default"
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT")
    monkeypatch.setenv("KUBECONFIG", path)
    assert kube.connect().server == "https://c.example", "no service variables: not in a pod"


# -- logins only the kubernetes library knows -------------------------------------------------


EXEC_PLUGIN = """
clusters: [{{name: c, cluster: {{server: "https://c.example"}}}}]
users:
- name: plugin
  user:
    as: jane
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {python}
      args:
      - -c
      - >-
        import json;
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential", "status": {{"token": "from-the-plugin"}}}}))
- {{name: password, user: {{username: admin, password: hunter2}}}}
contexts:
- {{name: main, context: {{cluster: c, user: plugin}}}}
- {{name: basic, context: {{cluster: c, user: password}}}}
current-context: main
"""


def test_an_exec_plugin_or_a_password_logs_in_through_the_kubernetes_library(tmp_path: Path) -> None:
    path = write(tmp_path / "config", EXEC_PLUGIN.format(python=json.dumps(sys.executable)))
    config = KubeConfig.load(str(path))
    assert header(config) == "Bearer from-the-plugin"
    assert config.login(None).impersonation == Impersonation("jane")
    assert config.login(None).server == "https://c.example"
    assert header(config, "basic") == "Basic " + base64.b64encode(b"admin:hunter2").decode()


def test_without_the_kubernetes_library_a_plugin_login_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "config", EXEC_PLUGIN.format(python=json.dumps(sys.executable)))
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(KubernetesUnavailableError, match="needs the kubernetes package"):
        KubeConfig.load(str(path)).login(None)


def test_a_token_login_imports_neither_the_kubernetes_library_nor_requests(tmp_path: Path) -> None:
    path = write(tmp_path / "config", IMPERSONATING)
    script = """
import json, sys
from common import kube
kube.connect()
print(json.dumps(sorted(name for name in ("kubernetes", "requests") if name in sys.modules)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(path)},
    )
    assert json.loads(done.stdout) == []
