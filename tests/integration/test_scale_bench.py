"""bench/scale_bench.py still runs: its --tiny mode (a few objects per phase) end to end against the local cluster.

It measures nothing here; it proves an operator or API change has not broken the bench. The bench
starts its own operator, so this session's are paused meanwhile (they would reconcile its objects too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.operator_fixture import running_session_operators

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale_bench.py"


def test_scale_bench_tiny_writes_its_figures_and_plots(cluster, tmp_path):
    paused = running_session_operators()
    for other in paused:
        other.stop()
    try:
        proc = subprocess.run([sys.executable, str(BENCH), "--tiny", "--results-dir", str(tmp_path)], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        for other in paused:
            other.start()
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    result = json.loads((tmp_path / "scale_bench.json").read_text())
    assert result["phases"][0]["count"] == 3  # every TrainingJob's latency was measured
    quiet = next(p for p in result["phases"] if p["name"].startswith("quiet"))
    assert quiet["writesPerS"] == 0, quiet["writes"]
    assert all((tmp_path / png).stat().st_size > 0 for png in result["plots"])
