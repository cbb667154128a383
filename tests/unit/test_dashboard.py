"""The Grafana dashboard is valid JSON, lays out cleanly, and every metric it queries is one kubeforge exports."""

from __future__ import annotations

import json
import re

from prometheus_client.metrics import MetricWrapperBase

from kubeforge import metrics as operator_metrics
from kubeforge_workloads.serve.metrics import ServerMetrics
from tests.chart import REPO

DASHBOARD = REPO / "examples" / "grafana" / "kubeforge-dashboard.json"
# Series each metric type exposes beyond its family name (prometheus_client's text format).
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def exported_series() -> set[str]:
    """Every series name the operator and the server can expose, derived from their metric definitions."""
    families = [f for m in vars(operator_metrics).values() if isinstance(m, MetricWrapperBase) for f in m.describe()]
    families += list(ServerMetrics().registry.collect())
    return {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}


def queried_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers starting with kubeforge_, labels and functions aside."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels) if w.startswith("kubeforge_")}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_queries(board: dict) -> list[str]:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in board["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def test_the_metric_name_extraction_sees_through_labels_and_functions():
    expr = 'histogram_quantile(0.99, sum by (le) (rate(kubeforge_x_bucket{kubeforge_fake="1"}[5m])))'
    assert queried_metrics(expr) == {"kubeforge_x_bucket"}


def test_every_queried_metric_is_exported_by_the_operator_or_the_server():
    unknown = {m for expr in all_queries(dashboard()) for m in queried_metrics(expr)} - exported_series()
    assert unknown == set()


def test_the_dashboard_covers_both_the_operator_and_the_server():
    queried = {m for expr in all_queries(dashboard()) for m in queried_metrics(expr)}
    assert any(m.startswith("kubeforge_operator_") for m in queried)
    assert "kubeforge_requests_in_flight" in queried and "kubeforge_request_duration_seconds_bucket" in queried


def test_every_panel_queries_the_selected_datasource_with_a_unique_id():
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]


def test_panels_do_not_overlap_on_the_grid():
    taken = set()
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert g["x"] + g["w"] <= 24 and not cells & taken, p["title"]
        taken |= cells
