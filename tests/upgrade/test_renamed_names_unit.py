"""Every public name 0.1.0 and 0.2.0 shipped that has since moved or been renamed still works,
with an ``AirflowProviderDeprecationWarning`` naming its replacement (until 1.0).

0.1.0 and 0.2.0 had the same provider names (0.2.0 only moved the emulator into its own
distribution, a documented break). The sensor's ``refreshed_after``/``poll_default``, the trigger
rows 0.2.0 wrote and the refresh XCom's ``sample_updated_at_before`` have their own tests
(tests/sensors, tests/triggers, tests/upgrade/test_refresh_result_emulator.py).
"""

from __future__ import annotations

import datetime
import importlib
import sys
from types import ModuleType

import pendulum
import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

NOW = pendulum.datetime(2026, 3, 1, 12, 0, tz="UTC")


def import_fresh(name: str) -> ModuleType:
    """Import ``name`` as a DAG file would the first time, checking it warns."""
    sys.modules.pop(name, None)
    with pytest.warns(AirflowProviderDeprecationWarning, match=rf"{name} is deprecated .* 1\.0; use "):
        return importlib.import_module(name)


def test_population_module_keeps_its_0_2_0_names_and_signatures() -> None:
    population = import_fresh("airflow_provider_sgseg.population")
    bounds = population.PollBounds()
    assert (bounds.floor, bounds.ceiling, bounds.default, bounds.slack) == (60.0, 3600.0, 300.0, 30.0)
    assert population.parse_timestamp("2026-03-01T12:00:00Z") == NOW
    next_sample = {"next_sample_update": "2026-03-01T12:10:00Z"}
    assert population.next_poll_delay(next_sample, NOW, 60, 3600, 300, 30) == 630
    assert population.next_poll_delay({}, NOW, 1, 10, 5, 0) == 5
    assert population.failure_delay(3, NOW, 60, 3600) == 240
    segment = {
        "status": {"query_validation": "VALID"},
        "sample_updated_at": "2026-03-01T11:30:00Z",
        "contacts_count": 7,
    }
    assert population.verdict(segment, population.watermark_from("2026-03-01T11:00:00Z"), 5).populated


def test_refresh_quota_module_keeps_decide_with_account_exhausted_until() -> None:
    refresh_quota = import_fresh("airflow_provider_sgseg.refresh_quota")
    segment = {"refreshes_used": 0, "max_refreshes": 2, "last_refreshed_at": None}
    assert refresh_quota.decide(segment, "UTC", NOW).allowed
    until = NOW + datetime.timedelta(hours=3)
    blocked = refresh_quota.decide(segment, "UTC", NOW, account_exhausted_until=until)
    assert (blocked.allowed, blocked.next_allowed_at, blocked.blocked_by) == (
        False,
        until,
        "account_daily_limit",
    )
    assert refresh_quota.decide(segment, "UTC", NOW, account_exhausted_until=NOW).allowed
    assert refresh_quota.parse_instant("2026-03-01T12:00:00+00:00") == NOW


def test_validation_module_keeps_every_0_2_0_validator() -> None:
    validation = import_fresh("airflow_provider_sgseg.validation")
    uuid = "0b6c47c3-3ae5-4b3e-8bff-3c9f1b0d6e1a"
    assert validation.segment_id(uuid) == uuid
    assert validation.time_zone("Europe/Berlin") == "Europe/Berlin"
    assert validation.send_at("now") == "now"
    assert validation.flag("send_to_all", "true") is True
    for name in ("single_send_id", "segment_name", "single_send_name", "query_dsl", "parent_list_ids",
                 "list_filter_ids", "segment_ids", "single_send_segment_ids", "single_send_list_ids",
                 "categories", "NAME_MAX_LENGTH", "SINGLE_SEND_MAX_SEGMENTS", "SINGLE_SEND_MAX_LISTS",
                 "SINGLE_SEND_MAX_CATEGORIES", "LIST_FILTER_MAX_IDS"):  # fmt: skip
        assert hasattr(validation, name), name


@pytest.mark.parametrize(
    ("module", "name", "new_home"),
    [
        ("airflow_provider_sgseg.version_compat", "task_state_store", "airflow_provider_sgseg.state_store"),
        (
            "airflow_provider_sgseg.hooks.marketing",
            "DEFAULT_BASE_URL",
            "airflow_provider_sgseg.hooks._settings",
        ),
        (
            "airflow_provider_sgseg.hooks.marketing",
            "DEFAULT_TIMEOUT",
            "airflow_provider_sgseg.hooks._settings",
        ),
        (
            "airflow_provider_sgseg.hooks.marketing",
            "MAX_CONNECT_TIMEOUT",
            "airflow_provider_sgseg.hooks._settings",
        ),
        ("airflow_provider_sgseg.hooks.marketing", "USER_AGENT", "airflow_provider_sgseg.hooks._settings"),
        (
            "airflow_provider_sgseg.sensors.segments",
            "TRANSIENT_ERRORS",
            "airflow_provider_sgseg.rules.waiting",
        ),
        ("airflow_provider_sgseg.sensors.segments", "EVENT_STATUSES", "airflow_provider_sgseg.rules.waiting"),
        (
            "airflow_provider_sgseg.sensors.segments",
            "DEFAULT_MAX_CONSECUTIVE_FAILURES",
            "airflow_provider_sgseg.rules.pacing",
        ),
        (
            "airflow_provider_sgseg.triggers.segments",
            "TRANSIENT_ERRORS",
            "airflow_provider_sgseg.rules.waiting",
        ),
        (
            "airflow_provider_sgseg.triggers.segments",
            "EVENT_STATUSES",
            "airflow_provider_sgseg.rules.waiting",
        ),
        (
            "airflow_provider_sgseg.triggers.segments",
            "DEFAULT_MAX_CONSECUTIVE_FAILURES",
            "airflow_provider_sgseg.rules.pacing",
        ),
    ],
)
def test_a_moved_module_name_is_still_served_from_its_old_module(
    module: str, name: str, new_home: str
) -> None:
    old = importlib.import_module(module)
    with pytest.warns(
        AirflowProviderDeprecationWarning, match=rf"{module}\.{name} is deprecated.*{new_home}"
    ):
        value = getattr(old, name)
    assert value is getattr(importlib.import_module(new_home), name)
    with pytest.raises(AttributeError):
        getattr(old, f"NO_SUCH_{name}")


def test_single_send_get_hook_is_the_task_hook() -> None:
    from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator

    operator = SendGridSingleSendOperator(task_id="send", name="n", segment_ids=["x"], sender_id=1)
    with pytest.warns(AirflowProviderDeprecationWarning, match=r"get_hook\(\) is deprecated.*\.hook"):
        hook = operator.get_hook()
    assert hook is operator.hook
    assert hook.sendgrid_conn_id == "sendgrid_default"


@pytest.mark.parametrize(
    ("arguments", "old"),
    [({"require_min_contacts": 5, "send_at": "now"}, "'require_min_contacts'"), ({}, "without send_at")],
)
def test_single_send_deprecations_name_their_removal_version(arguments: dict[str, object], old: str) -> None:
    from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator

    with pytest.warns(AirflowProviderDeprecationWarning, match=rf"{old}.* 1\.0") as caught:
        SendGridSingleSendOperator(task_id="send", name="n", segment_ids=["x"], sender_id=1, **arguments)
    assert len(caught) == 1


@pytest.mark.parametrize("old", ["refreshed_after", "poll_default"])
def test_sensor_deprecations_name_their_removal_version(old: str) -> None:
    from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

    value = "2026-01-01T00:00:00Z" if old == "refreshed_after" else 60.0
    with pytest.warns(AirflowProviderDeprecationWarning, match=rf"'{old}' is deprecated.* 1\.0"):
        SendGridSegmentPopulatedSensor(task_id="wait", segment_id="s", **{old: value})


def test_segment_operators_still_take_clock_and_sleep() -> None:
    from airflow_provider_sgseg.operators.segments import SendGridCreateSegmentOperator

    slept: list[float] = []
    with pytest.warns(AirflowProviderDeprecationWarning, match="clock/sleep is deprecated"):
        operator = SendGridCreateSegmentOperator(
            task_id="create", name="n", query_dsl="SELECT 1", clock=lambda: NOW, sleep=slept.append
        )
    assert operator.now() == NOW
    operator.sleep(2.5)
    assert slept == [2.5]


def test_the_0_1_0_emulator_module_says_where_it_went() -> None:
    # Documented as a break in 0.2.0 (the provider never imports the emulator): kept as a pointer.
    sys.modules.pop("airflow_provider_sgseg.emulator", None)
    with pytest.raises(ImportError, match="pip install sgseg-emulator"):
        importlib.import_module("airflow_provider_sgseg.emulator")


async def test_the_hook_still_takes_a_test_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import httpx

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    conn = {"conn_type": "sendgrid_marketing", "host": "https://sendgrid.test", "password": "SG.test-key"}
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps(conn))
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        return httpx.Response(200, json={"id": "seg-1", "contacts_count": 3})

    with pytest.warns(AirflowProviderDeprecationWarning, match=r"transport=\.\.\.\) is deprecated"):
        hook = SendGridMarketingHook(transport=httpx.MockTransport(answer))
    uuid = "0b6c47c3-3ae5-4b3e-8bff-3c9f1b0d6e1a"
    assert hook.get_segment(uuid)["contacts_count"] == 3
    assert (await hook.aget_segment(uuid))["contacts_count"] == 3
    assert seen == [f"GET https://sendgrid.test/v3/marketing/segments/2.0/{uuid}?contacts_sample=true"] * 2


def test_single_send_optional_min_contacts_keeps_its_0_2_0_contract() -> None:
    from airflow_provider_sgseg.exceptions import SendGridInputError
    from airflow_provider_sgseg.operators import single_sends

    expected = {None: None, "": None, "None": None, 0: 0, "7": 7, " 12 ": 12, 40: 40}
    for value, number in expected.items():
        with pytest.warns(
            AirflowProviderDeprecationWarning,
            match=r"single_sends\.optional_min_contacts is deprecated .* 1\.0; use .*count_or_none",
        ):
            assert single_sends.optional_min_contacts(value) == number
    for bad in (-1, "-3", "many", True, 2.5):
        with (
            pytest.warns(AirflowProviderDeprecationWarning),
            pytest.raises(SendGridInputError, match="require_min_contacts"),
        ):
            single_sends.optional_min_contacts(bad)


def test_single_send_same_recipients_keeps_its_0_2_0_contract() -> None:
    from types import SimpleNamespace

    from airflow_provider_sgseg.operators import single_sends

    request = SimpleNamespace(segment_ids=["b", "a"], list_ids=[], send_to_all=False)  # what it reads
    same = {"send_to": {"segment_ids": ["a", "b"], "list_ids": [], "all": False}}
    other = {"send_to": {"segment_ids": ["a"], "list_ids": [], "all": False}}
    deprecated = r"single_sends\.same_recipients is deprecated"
    with pytest.warns(AirflowProviderDeprecationWarning, match=deprecated):
        assert single_sends.same_recipients(same, request) is True
    with pytest.warns(AirflowProviderDeprecationWarning):
        assert single_sends.same_recipients(other, request) is False


def test_task_deferral_timeout_keeps_its_0_3_0_contract() -> None:
    from airflow_provider_sgseg import task

    now = pendulum.datetime(2026, 1, 1, tz="UTC")
    with pytest.warns(AirflowProviderDeprecationWarning, match=r"task\.deferral_timeout is deprecated"):
        timeout = task.deferral_timeout(now.add(seconds=90), now, 30.0)
    assert type(timeout) is datetime.timedelta and timeout == datetime.timedelta(seconds=120)
    with pytest.warns(AirflowProviderDeprecationWarning):
        assert task.deferral_timeout(now, now.add(seconds=5), 1.0) == datetime.timedelta(seconds=1)
