"""Airflow's own CLI discovers the provider, its hook and its connection form without complaint."""

from __future__ import annotations

import os
import subprocess

import pytest

from airflow_provider_sgseg.get_provider_info import connection_type_info, get_provider_info
from tests.conftest import AIRFLOW_BIN

HOOK = "airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook"


def _airflow_providers(*commands: str) -> dict[str, str]:
    """Run ``airflow providers <command>`` for each command, side by side; output by command."""
    running = {
        command: subprocess.Popen(
            [str(AIRFLOW_BIN), "providers", command],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    }
    outputs = {}
    for command, process in running.items():
        output, _ = process.communicate(timeout=180)
        assert process.returncode == 0, output
        outputs[command] = output
    return outputs


def _complaints_about_us(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if ("ERROR" in line.upper() or "WARNING" in line.upper()) and "sgseg" in line.lower()
    ]


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    return _airflow_providers("list", "hooks", "widgets", "behaviours")


def test_providers_list_shows_the_package(outputs: dict[str, str]) -> None:
    line = next(line for line in outputs["list"].splitlines() if "airflow-provider-sgseg" in line)
    assert get_provider_info()["versions"][0] in line


def test_providers_hooks_shows_the_connection_type(outputs: dict[str, str]) -> None:
    line = next(line for line in outputs["hooks"].splitlines() if line.startswith("sendgrid_marketing "))
    assert HOOK in line
    assert "sendgrid_conn_id" in line
    assert "SendGrid Marketing" in line


def test_providers_widgets_shows_the_form_fields(outputs: dict[str, str]) -> None:
    widgets = outputs["widgets"]
    assert "extra__sendgrid_marketing__on_behalf_of" in widgets
    assert "extra__sendgrid_marketing__timeout" in widgets


def test_providers_behaviours_lists_the_connection_type(outputs: dict[str, str]) -> None:
    assert "sendgrid_marketing" in outputs["behaviours"]


def test_discovery_has_no_error_or_warning_about_us(outputs: dict[str, str]) -> None:
    for command, output in outputs.items():
        assert _complaints_about_us(output) == [], command


def test_connection_form_is_declared_in_provider_info() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn == connection_type_info()  # for the installed Airflow
    assert conn["connection-type"] == "sendgrid_marketing"
    assert conn["hook-class-name"] == HOOK
    for release in ((3, 0, 6), (3, 1, 8), (3, 2, 2), (3, 3, 3), (3, 4, 0)):
        behaviour = connection_type_info(release)["ui-field-behaviour"]
        assert sorted(behaviour["hidden-fields"]) == ["login", "port", "schema"], release
        assert behaviour["relabeling"] == {"password": "API key"}, release
        assert "port" not in behaviour["placeholders"], release
    assert conn["ui-field-behaviour"]["placeholders"]["host"] == "https://api.sendgrid.com"
    assert set(conn["conn-fields"]) == {"on_behalf_of", "timeout"}


@pytest.mark.parametrize("release", [(3, 3, 0), (3, 3, 1), (3, 3, 2)])
def test_the_form_shows_port_where_the_test_button_needs_a_stored_one(release: tuple[int, int, int]) -> None:
    # These releases' Test button posts port 0 for a connection stored without a port, which the
    # api-server refuses with 400 before the hook runs (apache/airflow#73298): a stored port is the
    # way out, so the form must let the user store one, and say why.
    behaviour = connection_type_info(release)["ui-field-behaviour"]
    assert sorted(behaviour["hidden-fields"]) == ["login", "schema"]
    assert "Test button" in behaviour["relabeling"]["port"] and "443" in behaviour["relabeling"]["port"]
    assert behaviour["placeholders"]["port"] == "443"
    assert behaviour["relabeling"]["password"] == "API key"


def test_provider_info_matches_airflows_schema() -> None:
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_info_modules_exist() -> None:
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info.get(section, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_extra_fields_declare_the_examples_airflow_33_draws_as_placeholders() -> None:
    # Airflow 3.3's form gives an extra field a placeholder only from its JSON Schema examples, and
    # only as a text field (tests/system/test_connection_form.py sees it in a browser).
    (conn,) = get_provider_info()["connection-types"]
    for name, field in conn["conn-fields"].items():
        assert field["schema"]["type"] == ["string", "null"], name
        assert field["schema"]["examples"], name


def test_hook_form_methods_exist_only_where_airflow_reads_them() -> None:
    """3.0/3.1 draw the form from the hook's classmethods, built from the same declaration;
    3.2+ read conn-fields and warn about hooks that still define the methods."""
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
    from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_2_PLUS

    defined = {"get_connection_form_widgets", "get_ui_field_behaviour"} & set(SendGridMarketingHook.__dict__)
    if AIRFLOW_V_3_2_PLUS:
        assert defined == set()
        return
    (conn,) = get_provider_info()["connection-types"]
    widgets = SendGridMarketingHook.get_connection_form_widgets()
    assert {name: field.args[0] for name, field in widgets.items()} == {
        name: spec["label"] for name, spec in conn["conn-fields"].items()
    }
    assert {name: field.kwargs["description"] for name, field in widgets.items()} == {
        name: spec["description"] for name, spec in conn["conn-fields"].items()
    }
    behaviour = SendGridMarketingHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == conn["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == {"password": "API key"}
