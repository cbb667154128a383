"""kubeforge-serve with a model that misbehaves on a cue word: a real server process for the reliability tests.

    python -m tests.workload.serve_faults hang|fail WORD <kubeforge-serve flags>

hang: a model call holding a text with WORD never returns (a hung backend); fail: it raises.
Only the model call is replaced; batching, deadlines, readiness and the HTTP stack are the real server's.

With KUBEFORGE_TEST_GATE set to a path, a model call holding a text with the word "gate" waits (up to
120 s) until that file exists (touching GATE.reached when it starts to wait): a test holds the inference thread busy while requests queue behind it,
then releases it, so what the next batch holds is decided by the test and not by thread timing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from kubeforge_workloads.serve import cli
from kubeforge_workloads.serve.model import TextClassificationModel


def install(fault: str, word: str) -> None:
    real_infer = TextClassificationModel.infer
    never = threading.Event()
    gate = os.environ.get("KUBEFORGE_TEST_GATE")

    def infer(self, batch):
        if gate:
            gate_ids = self.encoder.encode(["gate"])[0].ids[1:-1]  # word pieces: matched in sequence
            n = len(gate_ids)
            if any(e.ids[i:i + n] == gate_ids for e in batch for i in range(len(e.ids))):
                Path(gate + ".reached").touch()
                deadline = time.monotonic() + 120
                while not Path(gate).exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
        cue = set(self.encoder.encode([word])[0].ids[1:-1])  # the word's tokens, without [CLS] and [SEP]
        if any(cue <= set(e.ids) for e in batch):
            if fault == "hang":
                never.wait()
            raise ValueError(f"cannot classify a text containing {word!r}")
        return real_infer(self, batch)

    TextClassificationModel.infer = infer


if __name__ == "__main__":
    fault, word, *flags = sys.argv[1:]
    install(fault, word)
    sys.exit(cli.main(flags))
