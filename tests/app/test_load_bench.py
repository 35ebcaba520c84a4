"""benchmarks/load_bench.py runs end to end with tiny settings (the 60 s, 50-client run is in docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_load_bench_runs_with_tiny_settings(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "load_bench.py"), "--synthetic", "40", "--clients", "3",
           "--seconds", "1.5", "--out", str(out), "--label", "test"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["errors"] == 0, record["error_samples"]
    assert record["requests"] > 10 and record["clients"] == 3 and record["gzip"] is True
    endpoints = {"instances", "instance", "templates", "table_arrow", "table_json", "manifest"}
    assert set(record["per_endpoint"]) == endpoints
    assert all(v["requests"] > 0 for k, v in record["per_endpoint"].items() if k != "manifest")
    lat = record["latency_s"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    rss = record["server_rss_bytes"]
    assert rss["start"] and rss["end"] and rss["end"] >= rss["start"] // 2
    assert "p99" in done.stdout and str(out) in done.stdout
