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
