"""A minimal v2 client for demos and smoke checks: wait for readiness, classify texts, print the answers.

    python -m kubeforge_workloads.serve.client --url http://127.0.0.1:8080 "I loved it" "Awful"
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from kubeforge import servecontract as sc


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + sc.READY_PATH, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # polling interval of a deadline-bounded readiness wait
    raise SystemExit(f"{url} did not become ready within {timeout:.0f}s")


def infer(url: str, model: str, texts: list[str]) -> list[dict]:
    body = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}],
            "outputs": [{"name": "label"}, {"name": "score"}]}
    req = urllib.request.Request(f"{url}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        outputs = {o["name"]: o["data"] for o in json.load(resp)["outputs"]}
    return [{"text": t, "label": lab, "score": round(s, 4)}
            for t, lab, s in zip(texts, outputs["label"], outputs["score"])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kubeforge_workloads.serve.client")
    ap.add_argument("--url", default=f"http://127.0.0.1:{sc.DEFAULT_PORT}")
    ap.add_argument("--model", default="model")
    ap.add_argument("--wait", type=float, default=120.0, help="seconds to wait for readiness")
    ap.add_argument("texts", nargs="+")
    args = ap.parse_args(argv)
    wait_ready(args.url, args.wait)
    for row in infer(args.url, args.model, args.texts):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
