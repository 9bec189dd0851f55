"""A user's own DAG test through ``sendgrid_dag_runner``, run as the user runs it: their repository
(tests/user_dag_project: a DAG written from the docs and a one-fixture test) in its own pytest
process, with no Airflow variable set. Its time budget is benchmark 9 (benchmarks/user_dag_test.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.user_dag_test import run_project, user_environment


def test_a_users_dag_test_passes_with_one_fixture_and_no_airflow_set_up(tmp_path: Path) -> None:
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = {**user_environment(), "HOME": str(home), "TMPDIR": str(scratch)}

    done, _, _ = run_project(tmp_path, env=env, timeout=280)

    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    assert "1 passed" in done.stdout
    assert not (home / "airflow").exists()  # the user's default AIRFLOW_HOME is left alone
    assert not list(scratch.glob("sgseg-emulator-airflow-home-*"))  # the throwaway home is removed
