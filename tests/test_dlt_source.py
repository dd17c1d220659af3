"""The dlt source into DuckDB from the sandbox: counts equal the sandbox's, a second run loads only new calls."""

from __future__ import annotations

from pathlib import Path

import pytest

dlt = pytest.importorskip("dlt", reason="dlt is not installed (pip install 'plumasync[dlt]')")
duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed")

from plumasync.dlt_source import plum_calllogs  # noqa: E402
from plumasync.sandbox import SandboxConfig, SandboxServer  # noqa: E402

pytestmark = pytest.mark.e2e


def test_load_into_duckdb_then_only_new_calls(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=40)
    start = config.start_of_calls
    with SandboxServer(config) as server:
        options = {"login": "demo", "password": "demo-password", "voicetrends_url": server.voicetrends_url,
                   "calllogs_url": server.calllogs_url}
        db = tmp_path / "warehouse.duckdb"
        pipeline = dlt.pipeline(pipeline_name="plum_test", destination=dlt.destinations.duckdb(str(db)),
                                dataset_name="calllogs", pipelines_dir=str(tmp_path / "pipelines"))
        pipeline.run(plum_calllogs(options, since=start, until=start + 20 * 60))
        first_details = server.app.recorder.count(path_prefix="/ws/calls/log/")
        pipeline.run(plum_calllogs(options, since=start, until=start + 40 * 60))
        second_details = server.app.recorder.count(path_prefix="/ws/calls/log/") - first_details
        expected = server.app.expected_ids(start, start + 40 * 60)
        sessions = server.app.data.expected_sessions(start, start + 40 * 60)
        errors = server.app.data.expected_errors(start, start + 40 * 60)
    with duckdb.connect(str(db)) as conn:
        ids = sorted(row[0] for row in conn.execute("SELECT log_id FROM calllogs.calls").fetchall())
        n_sessions = conn.execute("SELECT COUNT(*) FROM calllogs.sessions").fetchone()[0]
        n_errors = conn.execute("SELECT COUNT(*) FROM calllogs.errors").fetchone()[0] if errors else 0
    assert ids == expected  # counts equal the sandbox's, each call once
    assert first_details == 20
    assert second_details <= 21  # only the new calls (the cursor's boundary call may be listed again)
    assert n_sessions == len(sessions) and n_errors == len(errors)
