"""DAGs written for 0.1.0 and 0.2.0 run unchanged on this release, against the emulator.

``dags_0_1_0/`` and ``dags_0_2_0/`` hold the example DAGs of those releases as they shipped
(``git show 6153c49:dags/...`` for 0.1.0, ``git show 1d63c82:dags/...`` for 0.2.0), plus, for
0.2.0, a DAG made of the snippets of its docs (0.1.0's are the same) and the DAG of issue 22,
whose sensor reads the refresh result's 0.2.0 key by name. 0.1.0's refresh and lifecycle DAGs
are byte for byte 0.2.0's (asserted below), so they run once.

Each runs under ``airflow dags test`` on a real-clock emulator (SendGrid's minutes as seconds),
so the deferrable sensor really waits for the refreshed sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_3_PLUS
from tests.conftest import REPO_ROOT, DagsTest
from tests.dags.test_pipeline import newest_state
from tests.helpers import PIPELINE_AUDIENCE, PIPELINE_CONTACTS, pipeline_dag_settings

HERE = Path(__file__).parent
DAGS_0_1_0 = HERE / "dags_0_1_0"
DAGS_0_2_0 = HERE / "dags_0_2_0"
SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
DAG_SETTINGS = pipeline_dag_settings("Upgrade test audience")


def output_of(run: object) -> str:
    return str(getattr(run, "stdout", "")) + str(getattr(run, "stderr", ""))


def test_0_1_0_refresh_and_lifecycle_dags_are_0_2_0s() -> None:
    for name in ("sendgrid_segment_refresh.py", "sendgrid_segment_lifecycle.py"):
        assert (DAGS_0_1_0 / name).read_bytes() == (DAGS_0_2_0 / name).read_bytes(), name


def test_0_2_0_example_pipeline_runs_unchanged(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle
) -> None:
    admin = sendgrid_emulator_real_clock.admin
    admin.seed_contacts(PIPELINE_CONTACTS)
    env = {**DAG_SETTINGS, **sendgrid_emulator_real_clock.conn_env()}

    refresh = dags_test("sendgrid_segment_refresh", dags_folder=DAGS_0_2_0, env=env)
    assert refresh.returncode == 0, output_of(refresh)[-6000:]
    segment_id = admin.requests(method="POST", path_prefix=f"{SEGMENTS}/refresh/")[0]["path"].split("/")[-1]

    for folder in (DAGS_0_2_0, DAGS_0_1_0) if AIRFLOW_V_3_3_PLUS else (DAGS_0_2_0,):
        # 0.1.0 required Airflow 3.3: its DAG imports AirflowFailException from where 3.3 has it.
        send = dags_test(
            "sendgrid_single_send", dags_folder=folder, env=env, conf=f'{{"segment_id": "{segment_id}"}}'
        )
        assert send.returncode == 0, output_of(send)[-6000:]
    deliveries = admin.sends()
    assert len(deliveries) == 1  # the same name on the same day: the second run found the first send
    assert deliveries[0]["recipient_count"] == PIPELINE_AUDIENCE


def test_0_2_0_lifecycle_dag_runs_unchanged(
    dags_test: DagsTest, sendgrid_emulator_real_clock: EmulatorHandle
) -> None:
    admin = sendgrid_emulator_real_clock.admin
    admin.seed_contacts([{"email": "reader@example.com"}])
    run = dags_test(
        "sendgrid_segment_lifecycle", dags_folder=DAGS_0_2_0, env=sendgrid_emulator_real_clock.conn_env()
    )
    assert run.returncode == 0, output_of(run)[-6000:]
    calls = {(r["method"], r["status"]) for r in admin.requests(path_prefix=SEGMENTS)}
    assert ("PATCH", 200) in calls
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    assert SendGridMarketingHook().list_segments() == []  # deleted at the end


def test_0_2_0_docs_snippets_run_unchanged(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle
) -> None:
    admin = sendgrid_emulator_real_clock.admin
    admin.seed_contacts(PIPELINE_CONTACTS)
    run = dags_test(
        "sendgrid_docs_0_2_0", dags_folder=DAGS_0_2_0, env=sendgrid_emulator_real_clock.conn_env()
    )
    output = output_of(run)
    assert run.returncode == 0, output[-6000:]
    assert newest_state(airflow_db, "sendgrid_docs_0_2_0", "drop_segment") == "success"
    assert len(admin.requests(method="POST", path_prefix=f"{SEGMENTS}/refresh/")) == 1
    assert [s["recipient_count"] for s in admin.sends()] == [PIPELINE_AUDIENCE]


def test_0_2_0_dag_reading_the_old_xcom_key_runs_unchanged(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle
) -> None:
    sendgrid_emulator_real_clock.admin.seed_contacts(PIPELINE_CONTACTS)
    run = dags_test(
        "sendgrid_xcom_key_0_2_0", dags_folder=DAGS_0_2_0, env=sendgrid_emulator_real_clock.conn_env()
    )
    assert run.returncode == 0, output_of(run)[-6000:]
    assert newest_state(airflow_db, "sendgrid_xcom_key_0_2_0", "wait_until_populated") == "success"


# Loaded by every Python process of the run (PYTHONPATH): the refresh result loses its 0.2.0 key.
WITHOUT_OLD_KEY = textwrap.dedent(
    """
    from airflow_provider_sgseg.operators import segments

    _execute = segments.SendGridRefreshSegmentOperator.execute

    def execute(self, context):
        result = _execute(self, context)
        result.pop("sample_updated_at_before")
        return result

    segments.SendGridRefreshSegmentOperator.execute = execute
    """
)


def test_the_0_2_0_dag_fails_without_the_old_xcom_key(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle, tmp_path: Path
) -> None:
    # The proof that the key is what keeps the DAG above working: the same run, minus the key.
    (tmp_path / "sitecustomize.py").write_text(WITHOUT_OLD_KEY)
    sendgrid_emulator_real_clock.admin.seed_contacts(PIPELINE_CONTACTS)
    env = {**sendgrid_emulator_real_clock.conn_env(), "PYTHONPATH": str(tmp_path)}
    run = dags_test("sendgrid_xcom_key_0_2_0", dags_folder=DAGS_0_2_0, env=env)
    output = output_of(run)
    assert newest_state(airflow_db, "sendgrid_xcom_key_0_2_0", "refresh") == "success", output[-6000:]
    assert newest_state(airflow_db, "sendgrid_xcom_key_0_2_0", "wait_until_populated") == "failed"
    assert "has no attribute 'sample_updated_at_before'" in output


# Parse a DAG folder as Airflow's DAG processor does; print {import_errors, dags, warnings by file}.
PARSE_AND_REPORT_WARNINGS = """
import json, sys, warnings
from pathlib import Path
from tests.airflow_compat import DagBag
with warnings.catch_warnings(record=True) as caught:  # the filters in force stay as they are
    bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
said = {}
for path, messages in getattr(bag, "captured_warnings", {}).items():  # Airflow keeps them (3.x)
    said.setdefault(Path(path).name, []).extend(messages)
for record in [] if said else caught:  # else they reach the caller
    said.setdefault(Path(record.filename).name, []).append(str(record.message))
print(json.dumps({"import_errors": bag.import_errors, "dags": len(bag.dags), "warnings": said}))
"""
NEEDS_3_3 = pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="0.1.0 required Airflow 3.3")
# The deprecation warnings each folder's DAG files raise when parsed (Airflow shows them as DAG
# warnings): file -> the old names it uses.
DEPRECATED_USES = {
    DAGS_0_1_0: {"sendgrid_segment_refresh.py": ["refreshed_after"]},
    DAGS_0_2_0: {
        "sendgrid_segment_refresh.py": ["refreshed_after"],
        "sendgrid_docs_0_2_0.py": ["refreshed_after", "poll_default"],
        "sendgrid_xcom_key_0_2_0.py": ["refreshed_after"],
    },
}


@pytest.mark.parametrize(
    "folder", [pytest.param(DAGS_0_1_0, marks=NEEDS_3_3), DAGS_0_2_0], ids=["0.1.0", "0.2.0"]
)
def test_old_dags_parse_and_say_what_is_deprecated(folder: Path) -> None:
    # Parsed in a process of its own, with the warning filters Airflow sets (pytest's would show
    # every warning): a warning attributed to the DAG file itself was filtered out, unseen.
    parsed = subprocess.run(
        [sys.executable, "-c", PARSE_AND_REPORT_WARNINGS, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
        cwd=REPO_ROOT,
    )
    assert parsed.returncode == 0, parsed.stderr[-4000:]
    report = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    assert report["dags"] == len(list(folder.glob("*.py")))
    captured: dict[str, list[str]] = report["warnings"]
    for name, old_names in DEPRECATED_USES[folder].items():
        said = " ".join(captured.get(name, []))
        for old in old_names:
            assert f"'{old}' is deprecated" in said, (name, captured)
