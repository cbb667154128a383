"""`kubeforge-train`: the entry point of every training pod (the node agent).

    kubeforge-train              run the built-in recipe from KUBEFORGE_RECIPE
    kubeforge-train -- CMD ...   run the user's command in each local process, same env
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from kubeforge.contract import LaunchEnv

from .launch import run_node


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="kubeforge-train",
        description="Start this node's training processes from the kubeforge launcher env (KUBEFORGE_*, MASTER_*, NODE_RANK).",
        epilog="Everything after -- is the user's command, run in each local process with the torch.distributed env.",
    )
    return parser.parse_args(own), command


def main(argv: list[str] | None = None) -> int:
    _, command = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kubeforge-train %(levelname)s: %(message)s")
    try:
        launch = LaunchEnv.from_env(dict(os.environ))
    except ValueError as exc:
        print(f"kubeforge-train: {exc}", file=sys.stderr)
        return 2
    if launch.launcher == "ray" and not command:
        print("kubeforge-train: launcher ray runs the command after -- as the Ray driver; none was given", file=sys.stderr)
        return 2
    if not command and not launch.recipe:
        print("kubeforge-train: neither a recipe (KUBEFORGE_RECIPE) nor a command after -- was given", file=sys.stderr)
        return 2
    return run_node(launch, dict(os.environ), command)


if __name__ == "__main__":
    sys.exit(main())
