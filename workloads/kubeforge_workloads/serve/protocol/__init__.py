"""Wire formats: the plain /predict form, KServe v1 and the Open Inference Protocol v2 (JSON and binary)."""
