"""kubeforge workloads: what runs inside the pods (the trainer and the inference server)."""
