"""The Go peer of the scale bench: the Kubeflow Training Operator (v1, PyTorchJob) as a process on the same cluster.

hack/build-binaries.sh training-operator builds it from its Go module (cmd/training-operator.v1,
the webhook server bound to 127.0.0.1) with the PyTorchJob CRD beside it. In a cluster it runs as a
pod whose webhook certificate Secret the kubelet mounts; here the bench plays that kubelet: it
creates the (empty) Secret and ValidatingWebhookConfiguration the certificate rotator fills in, and
copies the Secret's keys into the directory the rotator waits on. The configuration registers no
webhook, so the API server never calls it: the peer's validation is not on its create path.

The same N jobs as kubeforge's phase: one PyTorchJob with a Master and workers-1 Workers on the
bench's kwok nodes. Its timeline is recorded like a TrainingJob's: the first pod seen (the peer
creates pods itself, there is no Job), every pod Ready, and the Running condition; "done" is the
later of Running and every pod Ready, which is what a TrainingJob's Running means.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

from kubernetes import client, watch

import scaleprobe
from kubeforge.localhost import free_port
from tests.integration.clusterkit import binaries_dir
from tests.integration.operator_fixture import http_get
from tests.waiting import wait_for

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
SECRET, WEBHOOK_CONFIG = "training-operator-webhook-cert", "validator.training-operator.kubeflow.org"
# Fixed in the peer's pkg/cert (certDir): one peer per machine at a time.
CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
USER_AGENT = "training-operator/"


def binary() -> Path:
    return binaries_dir() / "training-operator"


def pytorchjob(name: str, workers: int, image: str, pool: tuple[str, str]) -> dict:
    def replicas(count: int) -> dict:
        container = {"name": "pytorch", "image": image, "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}
        return {"replicas": count, "restartPolicy": "OnFailure",
                "template": {"spec": {"nodeSelector": {pool[0]: pool[1]}, "containers": [container]}}}

    specs = {"Master": replicas(1), **({"Worker": replicas(workers - 1)} if workers > 1 else {})}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PyTorchJob", "metadata": {"name": name},
            "spec": {"pytorchReplicaSpecs": specs}}


class TrainingOperatorPeer:
    """start() / stop() the peer against `kubeconfig`; its certificates and Secret live in `namespace`."""

    def __init__(self, api: client.ApiClient, kubeconfig: str, namespace: str, log_path: Path, threads: int) -> None:
        self.api, self.kubeconfig, self.namespace, self.log_path, self.threads = api, kubeconfig, namespace, log_path, threads
        self.core = client.CoreV1Api(api)
        self.health_port, self.metrics_port, self.webhook_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "TrainingOperatorPeer":
        kubectl = str(binaries_dir() / "kubectl")
        subprocess.run([kubectl, "--kubeconfig", self.kubeconfig, "apply", "--server-side", "-f",
                        str(binaries_dir() / "training-operator-crds")], check=True, stdout=subprocess.DEVNULL)
        self.core.create_namespace({"metadata": {"name": self.namespace, "labels": {"kubeforge.io/bench": "scale"}}})
        self.core.create_namespaced_secret(self.namespace, {"metadata": {"name": SECRET}})
        admission = client.AdmissionregistrationV1Api(self.api)
        try:
            admission.delete_validating_webhook_configuration(WEBHOOK_CONFIG)
        except client.ApiException:
            pass
        admission.create_validating_webhook_configuration({"metadata": {"name": WEBHOOK_CONFIG}, "webhooks": []})
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "MY_POD_NAMESPACE": self.namespace}
        args = [str(binary()), "--enable-scheme=pytorchjob", f"--controller-threads={self.threads}",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{self.health_port}", f"--webhook-server-port={self.webhook_port}"]
        self.proc = subprocess.Popen(args, env=env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        wait_for(self._certificates_mounted, timeout=timeout, interval=0.5, message="the peer's certificates")
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.health_port}/readyz")[0] == 200, timeout=timeout, interval=0.5,
                 message="the peer ready")
        return self

    def _certificates_mounted(self) -> bool:
        """What the kubelet does for the peer's pod: the rotator's Secret, as files in its certificate directory."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"training-operator exited with {self.proc.returncode}; see {self.log_path}")
        data = self.core.read_namespaced_secret(SECRET, self.namespace).data or {}
        if "tls.crt" not in data:
            return False
        CERT_DIR.mkdir(parents=True, exist_ok=True)
        for key, value in data.items():
            (CERT_DIR / key).write_bytes(base64.b64decode(value))
        return True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PeerRecorder:
    """Watches one namespace's PyTorchJobs and their pods; fills a scaleprobe.Timeline like a TrainingJob's."""

    def __init__(self, api: client.ApiClient, namespace: str, workers: int) -> None:
        self.api, self.namespace, self.workers = api, namespace, workers
        self.jobs = scaleprobe.Timeline()
        self.running: dict[str, float] = {}  # the peer's own Running condition, before every pod is Ready
        self._ready: dict[str, set[str]] = defaultdict(set)
        self._stop = threading.Event()

    def start(self) -> "PeerRecorder":
        custom, core = client.CustomObjectsApi(self.api), client.CoreV1Api(self.api)
        streams = [
            (lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **kw), self._on_job),
            (lambda **kw: core.list_namespaced_pod(self.namespace, label_selector=JOB_NAME_LABEL, **kw), self._on_pod),
        ]
        for lister, handler in streams:
            threading.Thread(target=self._watch, args=(lister, handler), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, lister, handler) -> None:
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(lister, timeout_seconds=30, _request_timeout=60):
                    obj = event["object"]
                    handler(obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj), time.time())
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped watch: re-list (first-seen times are kept with setdefault)
                time.sleep(0.5)

    def _on_job(self, obj: dict, now: float) -> None:
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Running" and c.get("status") == "True" for c in conditions):
            name = obj["metadata"]["name"]
            self.running.setdefault(name, now)
            self._maybe_done(name)

    def _on_pod(self, obj: dict, now: float) -> None:
        name = obj["metadata"]["labels"][JOB_NAME_LABEL]
        self.jobs.child.setdefault(name, now)
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            self._ready[name].add(obj["metadata"]["name"])
            if len(self._ready[name]) >= self.workers:
                self.jobs.workers_ready.setdefault(name, now)
                self._maybe_done(name)

    def _maybe_done(self, name: str) -> None:
        if name in self.running and name in self.jobs.workers_ready:
            self.jobs.done.setdefault(name, max(self.running[name], self.jobs.workers_ready[name]))
