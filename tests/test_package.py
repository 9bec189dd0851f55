from airflow_provider_sgseg import __version__
from airflow_provider_sgseg.get_provider_info import get_provider_info


def test_provider_info_names_the_package_and_version() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-sgseg"
    assert info["versions"] == [__version__]


def test_old_emulator_import_says_where_it_went() -> None:
    import importlib

    import pytest

    with pytest.raises(ImportError, match=r"pip install sgseg-emulator"):
        importlib.import_module("airflow_provider_sgseg.emulator")


def test_contacts_module_keeps_every_public_name_after_the_split() -> None:
    from airflow_provider_sgseg import exceptions
    from airflow_provider_sgseg.operators import contacts, contacts_export, contacts_upsert
    from airflow_provider_sgseg.rules import contacts as contact_rules

    assert contacts.SendGridUpsertContactsOperator is contacts_upsert.SendGridUpsertContactsOperator
    assert contacts.SendGridExportContactsOperator is contacts_export.SendGridExportContactsOperator
    for name in (
        "UPSERT_STATE_KEY",
        "EXPORT_STATE_KEY",
        "DEFAULT_IMPORT_THRESHOLD",
        "MAX_IMPORT_ROWS",
        "MAX_IMPORT_BYTES",
        "MAX_REPORTED_ROWS",
        "DEFAULT_WAIT_TIMEOUT",
        "DEFAULT_BOUNDS",
    ):
        assert hasattr(contacts, name), name
    assert contact_rules.SendGridRowError is exceptions.SendGridRowError
    assert issubclass(exceptions.SendGridRowError, exceptions.SendGridInputError)
