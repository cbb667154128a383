"""The operator's Prometheus metrics (the server has its own in kubeforge_workloads.serve)."""

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("kubeforge_operator_reconciles_total", "Reconcile passes by kind and result", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "kubeforge_operator_reconcile_duration_seconds",
    "Time one reconcile pass took",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_WAIT_SECONDS = Histogram(
    "kubeforge_operator_queue_wait_seconds",
    "Time a key waited in the work queue for a worker (from its enqueue, or the end of its delay)",
    ["kind"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("kubeforge_operator_queue_depth", "Keys waiting to be reconciled")
WATCH_EVENTS = Counter("kubeforge_operator_watch_events_total", "Watch events received", ["resource"])
TRANSITIONS = Counter(
    "kubeforge_operator_phase_transitions_total", "Phase changes written to status", ["kind", "phase"]
)
API_REQUESTS = Counter(
    "kubeforge_operator_api_requests_total", "Requests the reconcilers sent to the API server", ["verb", "resource", "code"]
)
LEADER = Gauge("kubeforge_operator_leader", "1 while this replica holds the leader Lease (always 1 without leader election)")
HANDLERS_SINCE = Gauge(
    "kubeforge_operator_handlers_since_timestamp_seconds",
    "When kopf first called an event handler of this process (it calls none before every index has its initial list); "
    "minus process_start_time_seconds, what a start costs before any work is queued",
)
