"""Builders: a TrainingJob spec in, the Indexed Job, Service, ConfigMap and RBAC manifests out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubeforge.settings import Settings
from kubeforge.trainingjob.builders import (
    build_deepspeed_config_map,
    build_progress_config_map,
    build_role,
    build_role_binding,
    build_service,
    build_service_account,
    build_shared_children,
    build_worker_job,
)
from tests.unit.trainingjob_wrappers import MakeTrainingJob

OWNER = {"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "name": "train", "uid": "u1", "controller": True}
SETTINGS = Settings()


def dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj[int(key)] if isinstance(obj, list) else obj.get(key)
        if obj is None:
            return None
    return obj


def job_manifest(wrapper: MakeTrainingJob, attempt: int = 1, settings: Settings = SETTINGS, suspend: bool = False) -> dict:
    return build_worker_job(wrapper.model(), OWNER, attempt, settings, suspend)


def container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def env_of(manifest: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest)["env"]}


CASES = [
    ("one pod per node, all at once", MakeTrainingJob().nodes(4), "spec.parallelism", 4),
    ("completions equal nodes", MakeTrainingJob().nodes(4), "spec.completions", 4),
    ("indexed completion", MakeTrainingJob(), "spec.completionMode", "Indexed"),
    ("the operator owns restarts", MakeTrainingJob(), "spec.backoffLimit", 0),
    ("pods never restart in place", MakeTrainingJob(), "spec.template.spec.restartPolicy", "Never"),
    ("subdomain is the headless service", MakeTrainingJob("bert"), "spec.template.spec.subdomain", "bert-workers"),
    ("the pool's node selector", MakeTrainingJob().pool("a100"), "spec.template.spec.nodeSelector", {"kubeforge.io/pool": "a100"}),
    ("GPUs tolerate the GPU taint", MakeTrainingJob().gpus(8), "spec.template.spec.tolerations.0.key", "nvidia.com/gpu"),
    ("no toleration without GPUs", MakeTrainingJob(), "spec.template.spec.tolerations", None),
    ("GPUs as a limit", MakeTrainingJob().gpus(8), "spec.template.spec.containers.0.resources.limits", {"nvidia.com/gpu": "8"}),
    ("the default trainer image", MakeTrainingJob(), "spec.template.spec.containers.0.image", SETTINGS.trainer_image),
    ("the user's image", MakeTrainingJob().set("image", "me/train:1"), "spec.template.spec.containers.0.image", "me/train:1"),
    ("the recipe runs kubeforge-train bare", MakeTrainingJob(), "spec.template.spec.containers.0.args", None),
    ("non-root", MakeTrainingJob(), "spec.template.spec.securityContext.runAsNonRoot", True),
    ("seccomp RuntimeDefault", MakeTrainingJob(), "spec.template.spec.securityContext.seccompProfile.type", "RuntimeDefault"),
    ("no privilege escalation", MakeTrainingJob(), "spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", False),
    ("drop ALL capabilities", MakeTrainingJob(), "spec.template.spec.containers.0.securityContext.capabilities.drop", ["ALL"]),
    ("logs explain a crash", MakeTrainingJob(), "spec.template.spec.containers.0.terminationMessagePolicy", "FallbackToLogsOnError"),
    ("/dev/shm in memory", MakeTrainingJob(), "spec.template.spec.volumes.0.emptyDir.medium", "Memory"),
    ("priority class passes through", MakeTrainingJob().set("scheduling.priorityClassName", "high"), "spec.template.spec.priorityClassName", "high"),
    ("scheduler name passes through", MakeTrainingJob().set("scheduling.schedulerName", "volcano"), "spec.template.spec.schedulerName", "volcano"),
    ("the trainer's service account", MakeTrainingJob("bert"), "spec.template.spec.serviceAccountName", "bert-trainer"),
    ("owned by the TrainingJob", MakeTrainingJob(), "metadata.ownerReferences.0.uid", "u1"),
]


@pytest.mark.parametrize(("what", "wrapper", "path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_worker_job(what, wrapper, path, expected):
    assert dig(job_manifest(wrapper), path) == expected


def test_each_attempt_is_its_own_job_labelled_with_the_attempt():
    manifest = job_manifest(MakeTrainingJob("bert"), attempt=3)
    assert manifest["metadata"]["name"] == "bert-a3"
    assert manifest["spec"]["template"]["metadata"]["labels"]["kubeforge.io/attempt"] == "3"


def test_the_rendezvous_env_points_at_worker_zero_of_this_attempt():
    env = env_of(job_manifest(MakeTrainingJob("bert").nodes(4).gpus(8), attempt=2))
    assert env["MASTER_ADDR"] == "bert-a2-0.bert-workers"
    assert (env["NNODES"], env["NPROC_PER_NODE"], env["WORLD_SIZE"], env["KUBEFORGE_ATTEMPT"]) == ("4", "8", "32", "2")


def test_node_rank_comes_from_the_completion_index():
    env = env_of(job_manifest(MakeTrainingJob()))
    assert env["NODE_RANK"] == {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}


def test_omp_threads_are_set_from_the_cpu_limit():
    assert env_of(job_manifest(MakeTrainingJob().cpu("16").set("procsPerNode", 4)))["OMP_NUM_THREADS"] == "4"


def test_the_users_env_wins():
    manifest = job_manifest(MakeTrainingJob().set("env", [{"name": "MASTER_PORT", "value": "1234"}]))
    assert env_of(manifest)["MASTER_PORT"] == "1234"
    assert [e["name"] for e in container(manifest)["env"]].count("MASTER_PORT") == 1


def test_a_user_command_runs_behind_kubeforge_train():
    manifest = job_manifest(MakeTrainingJob().command("python", "train.py").set("args", ["--lr", "1e-4"]))
    assert container(manifest)["command"] == ["kubeforge-train"]
    assert container(manifest)["args"] == ["--", "python", "train.py", "--lr", "1e-4"]


def test_checkpoint_and_output_claims_are_mounted_once_each():
    wrapper = MakeTrainingJob().checkpoint("pvc://models/ckpt").output("pvc://models/final")
    volumes = job_manifest(wrapper)["spec"]["template"]["spec"]["volumes"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v] == ["models"]


def test_the_users_volume_replaces_ours_by_name():
    wrapper = MakeTrainingJob().set("volumes", [{"name": "dshm", "emptyDir": {"sizeLimit": "1Gi"}}])
    volumes = job_manifest(wrapper)["spec"]["template"]["spec"]["volumes"]
    assert [v for v in volumes if v["name"] == "dshm"] == [{"name": "dshm", "emptyDir": {"sizeLimit": "1Gi"}}]


def test_pod_template_metadata_reaches_the_pods_but_not_our_labels():
    wrapper = MakeTrainingJob("bert").pod_annotations(team="nlp").set("podTemplate.labels", {"kubeforge.io/trainingjob": "x", "cost": "a"})
    metadata = job_manifest(wrapper)["spec"]["template"]["metadata"]
    assert metadata["annotations"] == {"team": "nlp"}
    assert metadata["labels"]["kubeforge.io/trainingjob"] == "bert" and metadata["labels"]["cost"] == "a"


def test_kueue_jobs_are_created_suspended_with_the_queue_label():
    manifest = job_manifest(MakeTrainingJob().queue("team-a"), suspend=True)
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"


def test_without_progress_reporting_pods_get_no_token_and_no_rbac_objects():
    settings = Settings(trainer_progress=False)
    spec = job_manifest(MakeTrainingJob(), settings=settings)["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    job = MakeTrainingJob().model()
    built = [build(job, OWNER, settings) for build in (build_service_account, build_role, build_role_binding, build_progress_config_map)]
    assert built == [None, None, None, None]


def test_the_workers_token_may_patch_its_own_progress_config_map_and_nothing_else():
    role = build_role(MakeTrainingJob("bert").model(), OWNER, SETTINGS)
    assert role["metadata"]["name"] == "bert-trainer"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"], "resourceNames": ["bert-progress"]}]


def test_the_role_binding_binds_the_jobs_own_role_to_the_jobs_account():
    binding = build_role_binding(MakeTrainingJob("bert").model(), OWNER, SETTINGS)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bert-trainer"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "bert-trainer", "namespace": "ml"}]


def test_the_progress_config_map_is_created_empty_and_owned_by_the_job():
    config_map = build_progress_config_map(MakeTrainingJob("bert").model(), OWNER, SETTINGS)
    assert config_map["metadata"]["name"] == "bert-progress" and "data" not in config_map
    assert config_map["metadata"]["ownerReferences"] == [OWNER]
    assert config_map["metadata"]["labels"]["kubeforge.io/trainingjob"] == "bert"


def test_the_service_is_headless_and_publishes_workers_before_they_are_ready():
    service = build_service(MakeTrainingJob("bert").model(), OWNER)
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"kubeforge.io/trainingjob": "bert"}


@pytest.mark.parametrize(
    ("wrapper", "expected"),
    [
        (MakeTrainingJob(), {"zero_optimization": {"stage": 2}}),
        (MakeTrainingJob().set("deepspeed.zeroStage", 3), {"zero_optimization": {"stage": 3}}),
        (MakeTrainingJob().set("deepspeed.config", {"gradient_clipping": 0.5}), {"gradient_clipping": 0.5, "zero_optimization": {"stage": 2}}),
        (MakeTrainingJob().set("deepspeed.config", {"zero_optimization": {"stage": 1}}), {"zero_optimization": {"stage": 1}}),
    ],
)
def test_the_deepspeed_config_map_carries_the_config(wrapper, expected):
    config_map = build_deepspeed_config_map(wrapper.model(), OWNER)
    assert json.loads(config_map["data"]["ds_config.json"]) == expected


def test_no_config_map_for_torchrun_or_a_users_config_map():
    assert build_deepspeed_config_map(MakeTrainingJob().launcher("torchrun").model(), OWNER) is None
    referenced = MakeTrainingJob().set("deepspeed.configMapRef", {"name": "mine"})
    assert build_deepspeed_config_map(referenced.model(), OWNER) is None
    volumes = job_manifest(referenced)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "deepspeed-config", "configMap": {"name": "mine"}} in volumes


def test_shared_children_come_in_the_order_pods_need_them():
    kinds = [c["kind"] for c in build_shared_children(MakeTrainingJob().model(), OWNER, SETTINGS)]
    assert kinds == ["ServiceAccount", "ConfigMap", "Role", "ConfigMap", "Service", "RoleBinding"]


def test_builders_are_deterministic():
    assert job_manifest(MakeTrainingJob().nodes(3)) == job_manifest(MakeTrainingJob().nodes(3))


def test_elastic_jobs_let_the_job_controller_replace_a_lost_worker():
    spec = job_manifest(MakeTrainingJob().nodes(3).set("elastic", {"minNodes": 2, "maxNodes": 4}))["spec"]
    assert spec["backoffLimit"] == 3 and spec["podReplacementPolicy"] == "Failed"
    fail_job, ignore = spec["podFailurePolicy"]["rules"]
    assert fail_job["action"] == "FailJob" and fail_job["onExitCodes"]["values"] == [1, 2, 126, 127, 128, 139]
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}


def test_fixed_size_jobs_have_no_pod_failure_policy():
    assert "podFailurePolicy" not in job_manifest(MakeTrainingJob().nodes(3))["spec"]


def test_the_termination_message_path_in_the_env_is_the_one_the_kubelet_reads():
    manifest = job_manifest(MakeTrainingJob().command("python", "train.py"))
    assert env_of(manifest)["TERMINATION_MESSAGE_PATH"] == container(manifest)["terminationMessagePath"] == "/dev/termination-log"


def mounts(manifest: dict) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container(manifest)["volumeMounts"]}


def test_the_trainer_image_runs_with_a_read_only_root_and_writable_tmp_and_home():
    manifest = job_manifest(MakeTrainingJob())
    assert container(manifest)["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/tmp": "tmp", "/home/kubeforge": "home"}.items() <= mounts(manifest).items()
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}} and volumes["home"] == {"name": "home", "emptyDir": {}}


def test_an_output_path_outside_any_volume_gets_a_writable_empty_dir_under_a_read_only_root():
    manifest = job_manifest(MakeTrainingJob().output("/models/minilm").checkpoint(path="/tmp/ckpt"))
    assert mounts(manifest)["/models/minilm"].startswith("scratch-")
    assert "/tmp/ckpt" not in mounts(manifest)  # already writable under /tmp


def test_a_users_own_image_keeps_a_writable_root_and_gets_no_scratch_mounts():
    manifest = job_manifest(MakeTrainingJob().set("image", "team/trainer:7").output("/models/m"))
    assert container(manifest)["securityContext"]["readOnlyRootFilesystem"] is False
    assert not {"/tmp", "/home/kubeforge", "/models/m"} & set(mounts(manifest))


def test_the_users_own_tmp_mount_wins_over_ours():
    user = MakeTrainingJob().set("volumes", [{"name": "big-tmp", "emptyDir": {"sizeLimit": "50Gi"}}])
    user.set("volumeMounts", [{"name": "big-tmp", "mountPath": "/tmp"}])
    assert mounts(job_manifest(user))["/tmp"] == "big-tmp"
