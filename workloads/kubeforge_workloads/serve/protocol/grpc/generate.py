"""Regenerates inference_pb2.py and inference_pb2_grpc.py from inference.proto with grpcio-tools.

The generated modules are checked in, so the server image needs grpcio and protobuf only.
protoc runs with the workloads directory as its include root, so the generated service module
imports its messages by package path (kubeforge_workloads.serve.protocol.grpc.inference_pb2). One edit
to protoc's output: the messages go into a descriptor pool of their own (see _private_pool).

    python -m kubeforge_workloads.serve.protocol.grpc.generate           # rewrite the modules
    python -m kubeforge_workloads.serve.protocol.grpc.generate --check   # exit 1 when they drifted
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]  # the directory holding the kubeforge_workloads package
PROTO = HERE / "inference.proto"
GENERATED = ("inference_pb2.py", "inference_pb2_grpc.py")


def generate(out: Path) -> dict[str, str]:
    """Run protoc into `out`; the generated modules' text by file name."""
    from grpc_tools import protoc

    rel = PROTO.relative_to(ROOT)
    code = protoc.main(["protoc", f"-I{ROOT}", f"--python_out={out}", f"--grpc_python_out={out}", str(rel)])
    if code != 0:
        raise SystemExit(f"protoc failed on {PROTO} (exit {code})")
    texts = {name: (out / rel.parent / name).read_text() for name in GENERATED}
    texts["inference_pb2.py"] = _private_pool(texts["inference_pb2.py"])
    return texts


def _private_pool(text: str) -> str:
    """Register our messages in a descriptor pool of their own, not protobuf's process-wide default one.

    tritonclient.grpc (and any other Open Inference Protocol client) registers the same 'inference.*'
    names in the default pool from its own .proto file; a second registration under another file name
    is refused ("duplicate symbol"), so the two could not be imported in one process (a test, the bench).
    """
    default = "_descriptor_pool.Default().AddSerializedFile("
    if text.count(default) != 1:
        raise SystemExit(f"protoc output changed shape: expected one {default!r}")
    return text.replace(default, "_descriptor_pool.DescriptorPool().AddSerializedFile(")


def drifted() -> list[str]:
    """Names of checked-in modules that differ from what the .proto generates now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    return [name for name, text in fresh.items() if not (HERE / name).is_file() or (HERE / name).read_text() != text]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = drifted()
        if stale:
            print(f"stale generated gRPC modules: {stale}; run python -m {__spec__.name}", file=sys.stderr)
        return int(bool(stale))
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in generate(Path(tmp)).items():
            (HERE / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
