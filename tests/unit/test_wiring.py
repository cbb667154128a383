"""Explicit wiring: main calls each controller's setup; nothing registers itself on import or reaches into private state."""

from __future__ import annotations

import ast
from pathlib import Path

import kopf

from kubeforge import main
from kubeforge.api.modelendpoint import KIND as ENDPOINT
from kubeforge.api.trainingjob import KIND as TRAININGJOB
from kubeforge.workqueue import WorkQueue

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = {REPO / "operator" / "kubeforge" / "__main__.py"}


def python_files(*roots: str) -> list[Path]:
    return [p for root in roots for p in sorted((REPO / root).rglob("*.py"))]


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_setup_registers_both_reconcilers_on_the_queue_it_is_given():
    queue = WorkQueue()
    main.setup(kopf.OperatorRegistry(), queue)
    assert set(queue.reconcilers) == {TRAININGJOB, ENDPOINT}


def test_no_module_but_the_entry_points_imports_kubeforge_main():
    offenders = [str(p.relative_to(REPO)) for p in python_files("operator", "workloads")
                 if p not in ENTRY_POINTS and "kubeforge.main" in imports_of(p)]
    assert offenders == []


# Public APIs that only look private: os._exit is how a forked or signalled process leaves at once.
PUBLIC_DESPITE_THE_UNDERSCORE = {"os._exit"}


def test_no_code_outside_the_work_queue_reads_another_objects_private_attributes():
    offenders = []
    for path in python_files("operator", "workloads", "tests"):
        if path.name == "workqueue.py" or path.stem.endswith(("_pb2", "_pb2_grpc")):  # protoc writes those
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner_is_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                if not owner_is_self and ast.unparse(node) not in PUBLIC_DESPITE_THE_UNDERSCORE:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []
