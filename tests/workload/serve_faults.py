"""kubeforge-serve with a model that misbehaves on a cue word: a real server process for the reliability tests.

    python -m tests.workload.serve_faults hang|fail WORD <kubeforge-serve flags>

hang: a model call holding a text with WORD never returns (a hung backend); fail: it raises.
Only the model call is replaced; batching, deadlines, readiness and the HTTP stack are the real server's.
"""

from __future__ import annotations

import sys
import threading

from kubeforge_workloads.serve import cli
from kubeforge_workloads.serve.model import TextClassificationModel


def install(fault: str, word: str) -> None:
    real_infer = TextClassificationModel.infer
    never = threading.Event()

    def infer(self, batch):
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
