"""kubeforge-train: the program every TrainingJob worker pod runs (launch, recipe, checkpoints, export).

Importing this package is cheap: torch, DeepSpeed and Transformers load only in the
worker processes, so the node agent starts fast and the CLI help needs none of them.
"""
