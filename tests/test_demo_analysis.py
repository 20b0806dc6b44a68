"""The keyless demo (`python -m agent demo`) ends with the call's analysis, made by the offline
analyser in a worker process of its own, and says so."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_keyless_demo_prints_the_calls_analysis(repo_root, db_dsn, tmp_path):
    env = {**os.environ, "DATABASE_URL": db_dsn, "OPENAI_API_KEY": "", "ANALYSIS_BASE_URL": "",
           "SPOOL_DIR": str(tmp_path / "spool")}
    done = subprocess.run([sys.executable, "-m", "agent", "demo"], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    header = "=== Analysis v1 (completed), made by the offline rules analyser"
    analysis = done.stdout[done.stdout.index(header):]
    assert "intent=book journey=booking" in analysis
    assert "success=True (an appointment was booked)" in analysis
    assert "agent quality=" in analysis and analysis.rstrip().endswith("follow-ups: none")
