"""The ModelEndpoint controller: pure builders and status, model/runtime resolution, and the reconciler."""
