"""API types shared by TrainingJob and ModelEndpoint: compute resources, GPU node pools, status conditions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from kubeforge.api.base import ApiModel, preserve_unknown

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"


class Resources(ApiModel):
    """Per-pod compute: GPUs map to the operator's GPU resource name (nvidia.com/gpu by default)."""

    gpus: int = Field(0, ge=0, le=64, description="GPUs per pod (extended resource, requests = limits).")
    cpu: str | None = Field(None, pattern=QUANTITY_PATTERN, description="CPU request and limit per pod, e.g. '8' or '500m'.")
    memory: str | None = Field(None, pattern=QUANTITY_PATTERN, description="Memory request and limit per pod, e.g. '32Gi'.")


class NodePool(ApiModel):
    """Where pods land: a node selector, tolerations and affinity, passed to the pod as given."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the pods require, e.g. kubeforge.io/pool: a100.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, json_schema_extra=preserve_unknown("Pod tolerations (core/v1 Toleration), as given.")
    )
    affinity: dict[str, Any] | None = Field(None, json_schema_extra=preserve_unknown("Pod affinity (core/v1 Affinity), as given."))


class EventType(StrEnum):
    """core/v1 Event.type: the Events the operator posts on its resources."""

    NORMAL = "Normal"
    WARNING = "Warning"


class ConditionStatus(StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """metav1.Condition, the shape kstatus, Argo CD, Flux and `kubectl wait --for=condition=` read."""

    type: str = Field(..., description="The condition type, CamelCase (e.g. Ready, Succeeded).")
    status: ConditionStatus
    reason: str = Field(..., description="Why, in one CamelCase word.")
    message: str = ""
    last_transition_time: str = Field(..., json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(None, json_schema_extra={"format": "int64"})


# False while the API server refuses one of the resource's children, or a child's name is taken
# (kubeforge.applystatus); True again once every child applied. Both kinds carry it.
CHILDREN_APPLIED = "ChildrenApplied"


class ChildrenAppliedReason(StrEnum):
    APPLIED = "Applied"
    NAME_CONFLICT = "NameConflict"  # a child's name is taken by an object this resource does not control
    REFUSED_BY_API_SERVER = "RefusedByAPIServer"  # any other 4xx: a quota, an admission policy, an invalid object


def conditions_field(description: str) -> Any:
    """status.conditions: a list keyed by type, so a server-side apply or merge never duplicates one."""
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


# An object-store endpoint: http(s)://host[:port][/path], no query.
ENDPOINT_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class StorageCredentials(ApiModel):
    """A Secret in the same namespace holding an access key pair. Pods read it through secretKeyRef; the operator never does."""

    secret_name: str = Field(..., max_length=253, pattern=SECRET_NAME_PATTERN, description="Name of the Secret.")
    access_key_id_key: str = Field("AWS_ACCESS_KEY_ID", min_length=1, description="Key of the access key ID in the Secret.")
    secret_access_key_key: str = Field("AWS_SECRET_ACCESS_KEY", min_length=1, description="Key of the secret access key in the Secret.")
    session_token_key: str | None = Field(None, min_length=1, description="Key of a session token in the Secret, for temporary credentials.")


class CABundleRef(ApiModel):
    """A ConfigMap key holding PEM certificates."""

    name: str = Field(..., max_length=253, pattern=SECRET_NAME_PATTERN, description="ConfigMap in the same namespace.")
    key: str = Field("ca.crt", min_length=1, description="Key holding the PEM certificates.")


class StorageTLS(ApiModel):
    """TLS towards the object store (https endpoints)."""

    insecure_skip_verify: bool = Field(False, description="Accept any certificate. For tests only: anyone on the path can read the model.")
    ca_bundle: CABundleRef | None = Field(None, description="Extra CA certificates (PEM) to trust, e.g. a private CA fronting MinIO or Ceph.")


class ObjectStorage(ApiModel):
    """How pods reach the store behind s3:// URIs. Unset: AWS S3 with the pod's own identity (IRSA, EKS Pod Identity)."""

    endpoint: str | None = Field(
        None, max_length=2048, pattern=ENDPOINT_PATTERN,
        description="URL of an S3-compatible store (MinIO, Ceph RGW, SeaweedFS, GCS at https://storage.googleapis.com); unset: AWS S3.",
    )
    region: str | None = Field(None, min_length=1, max_length=64, description="Region to sign requests for; AWS default us-east-1.")
    path_style: bool | None = Field(
        None, description="Address buckets as endpoint/bucket (true) or bucket.endpoint (false); unset: path style with an endpoint, virtual hosts on AWS."
    )
    tls: StorageTLS | None = None
    credentials: StorageCredentials | None = Field(
        None, description="Access keys from a Secret; unset: the pod's ServiceAccount identity (workload identity) or the node's role."
    )
