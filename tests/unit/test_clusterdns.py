"""The real node's cluster DNS (hack/realnode/clusterdns.py): which names it answers, from Service and EndpointSlice lists."""

import importlib.util
import socket
import struct
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

spec = importlib.util.spec_from_file_location("clusterdns", REPO / "hack/realnode/clusterdns.py")
clusterdns = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clusterdns)

SERVICES = [
    {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"clusterIP": "10.96.0.20"}},
    {"metadata": {"name": "job", "namespace": "ns"}, "spec": {"clusterIP": "None"}},
]
SLICES = [
    {"metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "job"}}, "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.213.0.7"], "hostname": "job-a1-0", "conditions": {"ready": True}},
                   {"addresses": ["10.213.0.8"], "hostname": "job-a1-1", "conditions": {"ready": True}},
                   {"addresses": ["10.213.0.9"], "conditions": {"ready": False}}]},
    {"metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.213.0.3"], "conditions": {"ready": True}}]},
]


@pytest.fixture
def records():
    r = clusterdns.Records("https://127.0.0.1:1", None, "cluster.local")
    r.list_items = lambda path: SERVICES if path.endswith("/services") else SLICES
    return r


@pytest.mark.parametrize("name, addresses", [
    ("web.ns.svc.cluster.local", ["10.96.0.20"]),            # a ClusterIP Service: its ClusterIP, not the pods
    ("job.ns.svc.cluster.local", ["10.213.0.7", "10.213.0.8"]),  # headless: the ready endpoints
    ("job-a1-1.job.ns.svc.cluster.local", ["10.213.0.8"]),   # a worker's hostname.subdomain
    ("JOB-A1-0.job.ns.svc.cluster.local.", ["10.213.0.7"]),  # case and the root dot do not matter
    ("10-213-0-5.ns.pod.cluster.local", ["10.213.0.5"]),
    ("nope.ns.svc.cluster.local", None),
    ("example.com", None),                                   # nothing outside the cluster domain
])
def test_lookup_answers_service_and_pod_names_and_nothing_else(records, name, addresses):
    assert records.lookup(name) == addresses


def query(name: str, qtype: int) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def test_an_a_query_gets_every_address_with_the_query_id(records):
    reply = clusterdns.answer(records, query("job.ns.svc.cluster.local", clusterdns.A))
    qid, flags, _, ancount = struct.unpack("!HHHH", reply[:8])
    assert (qid, flags & 0xF, ancount) == (0x1234, clusterdns.NOERROR, 2)
    assert [socket.inet_ntoa(reply[i:i + 4]) for i in (len(reply) - 20, len(reply) - 4)] == ["10.213.0.7", "10.213.0.8"]


def test_a_known_name_asked_for_aaaa_is_an_empty_noerror_and_an_unknown_one_nxdomain(records):
    known = clusterdns.answer(records, query("web.ns.svc.cluster.local", clusterdns.AAAA))
    unknown = clusterdns.answer(records, query("nope.ns.svc.cluster.local", clusterdns.A))
    assert struct.unpack("!H", known[2:4])[0] & 0xF == clusterdns.NOERROR and known[6:8] == b"\0\0"
    assert struct.unpack("!H", unknown[2:4])[0] & 0xF == clusterdns.NXDOMAIN
