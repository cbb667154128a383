"""The kubeforge API: pydantic models for the custom resources, the single source of truth for the CRDs."""
