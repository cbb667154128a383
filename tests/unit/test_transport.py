"""kubeforge.transport: credentials found as client-go finds them, requests sent and refusals raised as kubeforge.kube expects."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from kubeforge import apierrors
from kubeforge.transport import ApiException, Endpoint, Transport, from_kubeconfig

REPO = Path(__file__).resolve().parents[2]


def kubeconfig(path: Path, user: dict, cluster: dict | None = None) -> Path:
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
              "clusters": [{"name": "k", "cluster": cluster or {"server": "https://127.0.0.1:6443/", "certificate-authority": "pki/ca.crt"}}],
              "users": [{"name": "u", "user": user}]}
    path.write_text(yaml.safe_dump(config))
    return path


def test_kubeconfig_paths_are_read_against_the_files_folder(tmp_path):
    endpoint = from_kubeconfig([kubeconfig(tmp_path / "config", {"client-certificate": "pki/admin.crt", "client-key": "/abs/admin.key"})])
    assert endpoint == Endpoint(server="https://127.0.0.1:6443", ca_file=str(tmp_path / "pki/ca.crt"),
                                cert_file=str(tmp_path / "pki/admin.crt"), key_file="/abs/admin.key")


def test_inline_certificate_data_goes_to_a_private_file(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cluster = {"server": "https://k:443", "certificate-authority-data": base64.b64encode(pem).decode()}
    endpoint = from_kubeconfig([kubeconfig(tmp_path / "config", {"token": "t0k"}, cluster)])
    assert Path(endpoint.ca_file).read_bytes() == pem and Path(endpoint.ca_file).stat().st_mode & 0o077 == 0
    assert endpoint.token == "t0k"


def test_a_user_that_needs_an_exec_plugin_is_left_to_the_kubernetes_client(tmp_path):
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}}
    assert from_kubeconfig([kubeconfig(tmp_path / "config", user)]) is None


def test_in_a_pod_the_service_address_comes_from_the_environment(monkeypatch, tmp_path):
    import kubeforge.transport as transport

    (tmp_path / "token").write_text("sa-token\n")
    monkeypatch.setattr(transport, "SERVICE_ACCOUNT", tmp_path)
    endpoint = Endpoint.load({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert endpoint.server == "https://10.96.0.1:443" and endpoint.token_file == str(tmp_path / "token")
    assert Transport(Endpoint(server="http://x", token_file=endpoint.token_file), 1, "ua").token() == "sa-token"


class FakeApiServer(BaseHTTPRequestHandler):
    """Answers like the API server: JSON, a Status with Retry-After on /busy, and echoes what it got."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        got = {"method": self.command, "path": self.path, "body": self.rfile.read(length).decode(),
               "contentType": self.headers.get("Content-Type"), "agent": self.headers.get("User-Agent"),
               "auth": self.headers.get("Authorization")}
        busy = self.path.startswith("/busy")
        data = json.dumps({"kind": "Status", "code": 429, "message": "slow down"} if busy else got).encode()
        self.send_response(429 if busy else 200)
        if busy:
            self.send_header("Retry-After", "3")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_request_carries_query_body_content_type_agent_and_token(server):
    sent = Transport(Endpoint(server=server, token="t0k"), 2, "kubeforge-operator/test").request(
        "PATCH", "/api/v1/namespaces/ml/configmaps/c", [("fieldManager", "kubeforge"), ("force", "true")], {"data": {"a": "b"}},
        "application/merge-patch+json")
    assert sent == {"method": "PATCH", "path": "/api/v1/namespaces/ml/configmaps/c?fieldManager=kubeforge&force=true",
                    "body": '{"data":{"a":"b"}}', "contentType": "application/merge-patch+json",
                    "agent": "kubeforge-operator/test", "auth": "Bearer t0k"}


def test_a_refusal_is_raised_with_what_apierrors_reads(server):
    with pytest.raises(ApiException) as refused:
        Transport(Endpoint(server=server), 1, "ua").request("GET", "/busy")
    assert refused.value.status == 429 and apierrors.retry_after(refused.value) == 3.0
    assert apierrors.refusal(refused.value, "x").message == "slow down"


def test_the_operator_process_never_imports_the_kubernetes_client(tmp_path):
    config = kubeconfig(tmp_path / "config", {"token": "t"}, {"server": "https://127.0.0.1:1"})
    probe = ("import sys, runpy; sys.argv = ['kubeforge', '--help']\n"
             "try:\n    runpy.run_module('kubeforge', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('kubernetes' in sys.modules and sys.modules['kubernetes'] is not None)")
    env = {"KUBECONFIG": str(config), "PYTHONPATH": f"{REPO / 'operator'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_the_operator_answers_help_without_any_credentials(tmp_path):
    """The image's smoke check runs `kubeforge-operator --help` with no kubeconfig and no service account."""
    env = {"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "absent"), "PYTHONPATH": f"{REPO / 'operator'}",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "kubeforge", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "kubeforge-operator" in out.stdout
