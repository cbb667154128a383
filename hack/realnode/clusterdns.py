#!/usr/bin/env python3
"""The real node's cluster DNS: Service and pod records of the cluster domain, read from the API server.

What CoreDNS's kubernetes plugin answers for A queries, and nothing else:
  <svc>.<ns>.svc.<domain>             the ClusterIP, or a headless Service's ready endpoint IPs
  <host>.<svc>.<ns>.svc.<domain>      the endpoint whose hostname is <host> (pods with hostname + subdomain,
                                      e.g. a TrainingJob's workers behind its headless Service)
  <a-b-c-d>.<ns>.pod.<domain>         the pod IP a.b.c.d
Every other name is NXDOMAIN: nothing is forwarded off the machine. A known name asked for another record
type (AAAA) gets an empty NOERROR, so resolvers do not give up on it.

Standard library only (the host's python3): it lists Services and EndpointSlices with the kubeconfig's
client certificate when a query finds its copy older than a second; idle, it costs nothing.
Listens on UDP and TCP port 53 of the bridge gateway, where the kubelet's clusterDNS points pods.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import urllib.request

TTL = 5
A, AAAA, CLASS_IN = 1, 28, 1
NOERROR, NXDOMAIN = 0, 3


def kubeconfig_client(path: str) -> tuple[str, ssl.SSLContext]:
    """The server URL and a TLS context from a kwokctl kubeconfig (file paths or inline -data fields)."""
    text = open(path).read()

    def field(name: str) -> str | None:
        m = re.search(rf"^\s*{name}:\s*(\S+)\s*$", text, re.M)
        return m.group(1).strip("'\"") if m else None

    def as_file(name: str) -> str | None:
        data = field(f"{name}-data")
        if data:
            f = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")
            f.write(base64.b64decode(data))
            f.close()
            return f.name
        return field(name)

    ctx = ssl.create_default_context(cafile=as_file("certificate-authority"))
    ctx.load_cert_chain(as_file("client-certificate"), as_file("client-key"))
    return field("server"), ctx


class Records:
    """name -> IPv4 addresses, rebuilt from the API at most once a second, on demand."""

    def __init__(self, server: str, ctx: ssl.SSLContext, domain: str):
        self.server, self.ctx, self.domain = server.rstrip("/"), ctx, domain
        self.names: dict[str, list[str]] = {}
        self.fetched = 0.0
        self.lock = threading.Lock()

    def list_items(self, path: str) -> list[dict]:
        with urllib.request.urlopen(self.server + path, context=self.ctx, timeout=5) as r:
            return json.load(r)["items"]

    def _refresh(self) -> None:
        names: dict[str, list[str]] = {}
        headless = set()
        for svc in self.list_items("/api/v1/services"):
            meta, spec = svc["metadata"], svc.get("spec", {})
            key = f"{meta['name']}.{meta['namespace']}.svc.{self.domain}"
            ip = spec.get("clusterIP")
            if ip and ip != "None":
                names[key] = [ip]
            else:
                headless.add(key)
                names.setdefault(key, [])
        for eps in self.list_items("/apis/discovery.k8s.io/v1/endpointslices"):
            meta = eps["metadata"]
            svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if not svc or eps.get("addressType") != "IPv4":
                continue
            key = f"{svc}.{meta['namespace']}.svc.{self.domain}"
            for ep in eps.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                addrs = ep.get("addresses") or []
                if key in headless:
                    names[key].extend(addrs)
                if ep.get("hostname"):
                    names[f"{ep['hostname']}.{key}"] = list(addrs)
        self.names = names

    def lookup(self, name: str) -> list[str] | None:
        """Addresses of a cluster name ([] when it exists without any), None when it does not exist."""
        name = name.lower().rstrip(".")
        pod = re.fullmatch(rf"(\d+)-(\d+)-(\d+)-(\d+)\.[a-z0-9-]+\.pod\.{re.escape(self.domain)}", name)
        if pod:
            return [".".join(pod.groups())]
        if not name.endswith(f".svc.{self.domain}"):
            return None
        with self.lock:
            if time.monotonic() - self.fetched > 1.0:
                try:
                    self._refresh()
                    self.fetched = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - answer from the last copy
                    print(f"clusterdns: refresh failed: {exc}", flush=True)
            return self.names.get(name)


def parse_question(msg: bytes) -> tuple[int, int, str, int, int, int]:
    """(id, flags, qname, qtype, qclass, end offset) of a one-question query."""
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1:
        raise ValueError("one question per query")
    labels, i = [], 12
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[i + 1:i + 5])
    return qid, flags, ".".join(labels), qtype, qclass, i + 5


def answer(records: Records, msg: bytes) -> bytes:
    qid, flags, qname, qtype, qclass, end = parse_question(msg)
    question = msg[12:end]
    addrs = records.lookup(qname) if qclass == CLASS_IN else None
    rcode = NXDOMAIN if addrs is None else NOERROR
    answers = [] if addrs is None or qtype != A else addrs
    rd = flags & 0x0100
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | rcode, 1, len(answers), 0, 0)
    body = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", A, CLASS_IN, TTL, 4) + socket.inet_aton(ip) for ip in answers)
    return header + question + body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--domain", default="cluster.local")
    args = p.parse_args()
    server, ctx = kubeconfig_client(args.kubeconfig)
    records = Records(server, ctx, args.domain)

    class UDP(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            try:
                sock.sendto(answer(records, data), self.client_address)
            except Exception as exc:  # noqa: BLE001 - a malformed query gets no answer
                print(f"clusterdns: bad query from {self.client_address}: {exc}", flush=True)

    class TCP(socketserver.StreamRequestHandler):
        def handle(self):
            try:
                (n,) = struct.unpack("!H", self.rfile.read(2))
                reply = answer(records, self.rfile.read(n))
                self.wfile.write(struct.pack("!H", len(reply)) + reply)
            except Exception as exc:  # noqa: BLE001
                print(f"clusterdns: bad TCP query: {exc}", flush=True)

    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    udp = socketserver.ThreadingUDPServer((args.listen, args.port), UDP)
    tcp = socketserver.ThreadingTCPServer((args.listen, args.port), TCP)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print(f"clusterdns: serving {args.domain} on {args.listen}:{args.port} from {server}", flush=True)
    udp.serve_forever()


if __name__ == "__main__":
    main()
