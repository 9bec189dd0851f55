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


def test_definitive_errors_are_airflow_fail_exceptions_and_keep_their_bases() -> None:
    from airflow_provider_sgseg import exceptions as errors
    from airflow_provider_sgseg.version_compat import AirflowFailException

    definitive = [
        errors.SendGridInputError("send_at", "2020-01-01T00:00:00Z", "in the past"),
        errors.SendGridRowError(3, "email", "x", "an email address"),
        errors.SendGridFileError("/data/a.csv", "not CSV", line=2),
        errors.SendGridConfigError("Connection 'c': no API key"),
        errors.SegmentQueryInvalidError("query INVALID"),
    ]
    for error in definitive:  # the task runner fails these without retries
        assert isinstance(error, AirflowFailException), type(error)
    assert all(isinstance(error, ValueError) for error in definitive[:3])
    assert isinstance(definitive[3], errors.SendGridAuthError)
    assert str(definitive[0]) == "Invalid send_at '2020-01-01T00:00:00Z': in the past"
    retriable = [
        errors.SendGridServerError("500"),
        errors.SendGridTransportError("no answer"),
        errors.SendGridRateLimitError("429"),
        errors.SendGridResponseError("cut"),
        errors.SendGridAuthError("401"),
        errors.SendGridNotFoundError("404"),
        errors.SendGridValidationError("400"),
    ]
    assert not any(isinstance(error, AirflowFailException) for error in retriable)
