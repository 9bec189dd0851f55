"""The emulator's inspection page (``/__emulator__/inspect``) in a real browser, as a person opens
it from an extra link: no key, no JavaScript needed, the linked segment marked, an unknown id said
plainly. Headless Chromium as in test_connection_form.py; screenshots under
``<artifacts>/inspect-page/``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from stack import System
from test_connection_form import browser, wait  # noqa: F401  (browser: the fixture)

QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@inspect.example.com'"


@pytest.fixture
def screenshots(artifacts: Path) -> Path:
    folder = artifacts / "inspect-page"
    folder.mkdir(exist_ok=True)
    return folder


def test_the_inspection_page_shows_a_person_the_linked_segment(
    system: System,
    browser: WebDriver,  # noqa: F811  (the fixture imported above)
    screenshots: Path,
) -> None:
    driver = browser
    name = f"inspect page {uuid.uuid4().hex[:8]}"
    segment = system.admin_post("/v3/marketing/segments/2.0", {"name": name, "query_dsl": QUERY})
    try:
        driver.get(f"{system.emulator_url}/__emulator__/inspect?segment_id={segment['id']}")
        marked = wait(driver, "//tr[@class='selected']")
        driver.save_screenshot(str(screenshots / "segment.png"))
        assert marked.get_attribute("id") == f"segment-{segment['id']}"
        assert name in marked.text and segment["id"] in marked.text and QUERY in marked.text
        assert driver.find_elements(By.XPATH, "//h2[normalize-space(.)='Contacts jobs']")
        assert driver.find_elements(By.XPATH, "//h2[normalize-space(.)='Single Sends']")
        assert system.api_key not in driver.page_source
        # The id in the "Selected" line is a link to the marked row.
        wait(driver, f"//a[@href='#segment-{segment['id']}']").click()
        assert driver.current_url.endswith(f"#segment-{segment['id']}")

        unknown = "00000000-0000-4000-8000-000000000000"
        driver.get(f"{system.emulator_url}/__emulator__/inspect?single_send_id={unknown}")
        missing = wait(driver, "//p[@class='missing']")
        driver.save_screenshot(str(screenshots / "unknown-single-send.png"))
        assert f"No single send {unknown} in this emulator" in missing.text
    except (AssertionError, WebDriverException):
        driver.save_screenshot(str(screenshots / "failure.png"))
        (screenshots / "failure.html").write_text(driver.page_source)
        raise
