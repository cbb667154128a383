"""`kubeforge`: the user's command line. Today: `kubeforge run FILE --local`, a TrainingJob trained on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubeforge", description="kubeforge: multi-node training and model serving on Kubernetes.")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a TrainingJob", description=(
        "Run a TrainingJob's workers as local processes on 127.0.0.1 with the env the operator would inject "
        "(to debug before spending GPU hours). On a cluster, `kubectl apply -f FILE` instead."))
    run.add_argument("file", help="YAML file with a TrainingJob")
    run.add_argument("--local", action="store_true", required=True, help="run on this machine (the only mode so far)")
    run.add_argument("--nodes", type=int, help="worker 'nodes' to start (default: spec.nodes)")
    run.add_argument("--procs-per-node", type=int, help="processes per node (default: the job's)")
    run.add_argument("--max-steps", type=int, help="stop after this many steps (recipe.maxSteps)")
    run.add_argument("--epochs", type=int, help="recipe.epochs")
    run.add_argument("--output", help="directory for the model (default: WORKDIR/model)")
    run.add_argument("--resume", action="store_true", help="continue from the work directory's checkpoints (default: start fresh)")
    run.add_argument("--workdir", type=Path, help="logs, checkpoints, progress (default: ./kubeforge-local/<job name>)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    from kubeforge.localrun import Overrides, run_local

    overrides = Overrides(nodes=args.nodes, procs_per_node=args.procs_per_node, max_steps=args.max_steps,
                          epochs=args.epochs, output=args.output, resume=args.resume)
    try:
        return run_local(args.file, overrides, args.workdir)
    except (OSError, ValueError) as exc:
        print(f"kubeforge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
