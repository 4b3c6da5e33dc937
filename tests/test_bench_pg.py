"""``make bench-pg`` at a tiny size: the script runs all three systems against the server,
verifies each run, and writes the JSON rows the PostgreSQL chapter reads.

Needs a server (``$FAILFIRST_PG_URL``) and the peers' packages (the default ``peers``
group); skipped without a server, failing instead with ``FAILFIRST_REQUIRE_PG=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgresql

ROOT = Path(__file__).resolve().parent.parent


def test_bench_pg_rows(tmp_path, pg_admin_url):
    out = tmp_path / "throughput_pg.json"
    done = subprocess.run(
        [sys.executable, "-m", "failfirst.bench.throughput_pg", "--jobs", "50", "--runs", "1",
         "--workers", "1", "--batch", "16", "--out", str(out), "--profile"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["workers"] for row in rows] == [1]
    row = rows[0]
    for system in ("failfirst", "procrastinate", "pgqueuer"):
        assert row[f"{system}_jobs_per_s"] > 0
        assert len(row[f"{system}_runs"]) == 1
    assert row["ratio_vs_procrastinate"] > 0 and row["ratio_vs_pgqueuer"] > 0
    assert row["exactly_once_verified"] and row["synchronous_commit"] == "on"
    assert "ff/pgqueuer" in done.stdout
    profile = (tmp_path / "profile_pg.txt").read_text()
    assert "statements the worker sent" in profile and "top 25 functions by tottime" in profile
