"""Model URIs map to a PVC mount or a plain path; unsupported schemes are refused with the reason."""

import pytest

from kubeforge import storage


@pytest.mark.parametrize(
    "uri, claim, local_path",
    [
        ("pvc://models/run-1", "models", "/mnt/kubeforge/models/run-1"),
        ("pvc://models", "models", "/mnt/kubeforge/models"),
        ("file:///opt/model", None, "/opt/model"),
        ("/opt/model", None, "/opt/model"),
        ("s3://models/runs/run-1/", None, "/var/lib/kubeforge/staging/models/runs/run-1"),
    ],
)
def test_uri_maps_to_a_local_path(uri, claim, local_path):
    loc = storage.parse_uri(uri)
    assert (loc.claim, loc.local_path) == (claim, local_path)


@pytest.mark.parametrize("uri, reason", [("gs://bucket/x", "not supported yet"), ("s3:///x", "bucket name"), ("pvc:///x", "claim name"), ("model", "expected"), ("", "empty")])
def test_unsupported_uris_say_why(uri, reason):
    with pytest.raises(storage.UnsupportedURI, match=reason):
        storage.parse_uri(uri)


def test_join_keeps_the_scheme():
    assert storage.join("pvc://models/", "run-1", "/onnx") == "pvc://models/run-1/onnx"


def test_an_s3_uri_names_its_bucket_and_key_prefix():
    loc = storage.parse_uri("s3://models/runs/run-1")
    assert (loc.is_object_store, loc.bucket, loc.subpath) == (True, "models", "runs/run-1")
    assert storage.is_object_uri("s3://models/x") and not storage.is_object_uri("pvc://models/x")
