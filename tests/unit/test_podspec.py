"""Shared pod pieces: restricted security, GPU resources and tolerations, the user's choices kept."""

from kubeforge import podspec, storage
from kubeforge.api.common import NodePool, Resources

GPU = "nvidia.com/gpu"


def test_gpus_become_the_configured_extended_resource():
    res = podspec.container_resources(Resources(gpus=8, cpu="32", memory="256Gi"), GPU)
    assert res["limits"] == {"cpu": "32", "memory": "256Gi", GPU: "8"} and res["requests"] == res["limits"]
    assert podspec.container_resources(Resources(gpus=1), "amd.com/gpu")["limits"] == {"amd.com/gpu": "1"}


def test_no_resources_means_no_resources_block():
    assert podspec.container_resources(Resources(), GPU) == {}


def test_gpu_pods_tolerate_the_gpu_taint_but_cpu_pods_do_not():
    pool = NodePool(node_selector={"kubeforge.io/pool": "h100"})
    assert podspec.placement(pool, 8, GPU)["tolerations"] == [podspec.gpu_toleration(GPU)]
    assert "tolerations" not in podspec.placement(pool, 0, GPU)


def test_users_own_gpu_toleration_wins():
    mine = {"key": GPU, "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    out = podspec.placement(NodePool(tolerations=[mine]), 8, GPU)
    assert out["tolerations"] == [mine]


def test_restricted_profile_fields():
    ctx = podspec.container_security_context()
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert podspec.pod_security_context()["runAsNonRoot"] is True


def test_pvc_locations_mount_their_claim_and_image_paths_mount_nothing():
    volume, mount = podspec.pvc_volume(storage.parse_uri("pvc://models/run-1"), read_only=True)
    assert volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert mount["mountPath"] == "/mnt/kubeforge/models"
    assert podspec.pvc_volume(storage.parse_uri("/opt/model"), read_only=True) is None


def test_user_env_overrides_ours():
    ours = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    theirs = [{"name": "B", "value": "mine"}]
    assert podspec.merge_env(ours, theirs) == [{"name": "A", "value": "1"}, {"name": "B", "value": "mine"}]
