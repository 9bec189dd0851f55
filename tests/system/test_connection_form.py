"""The connection form in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium; nothing is downloaded) against the api-server.

The ``sendgrid_marketing`` type is listed as "SendGrid Marketing"; Host and API key show their
placeholders; schema and login are hidden, and port too except on Airflow 3.3.0 to 3.3.2 (whose
Test button needs a stored port: apache/airflow#73298); Subuser and Timeout show labels,
descriptions and placeholders; the Test button of a connection made in the form succeeds against
the emulator and fails clearly with a wrong key. Screenshots of each step are kept under
``<artifacts>/connection-form/``.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from stack import System

from airflow_provider_sgseg.get_provider_info import PORT_LABEL, port_shown

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,2000",
]  # fmt: skip
DIALOG = "//div[@role='dialog']"
PASSED, FAILED = "Test Connection Successful", "Test Connection Failed"


@pytest.fixture
def screenshots(artifacts: Path) -> Path:
    folder = artifacts / "connection-form"
    folder.mkdir(exist_ok=True)
    print(f"\nconnection form screenshots: {folder}")
    return folder


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    profile = Path(tempfile.mkdtemp(prefix="sgseg-e2e-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    # The driver's path is given, so selenium's manager never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: WebDriver, xpath: str, timeout: float = 30) -> WebElement:
    element: WebElement = WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.XPATH, xpath))
    return element


def field_row(driver: WebDriver, label: str) -> WebElement:
    """The form row (label, input, helper text) whose label starts with ``label``."""
    return wait(driver, f"{DIALOG}//div[@role='group'][.//label[starts-with(normalize-space(.), '{label}')]]")


def rows_labelled(driver: WebDriver, label: str) -> list[WebElement]:
    xpath = f"{DIALOG}//div[@role='group'][.//label[starts-with(normalize-space(.), '{label}')]]"
    return [row for row in driver.find_elements(By.XPATH, xpath) if row.is_displayed()]


def fill(row: WebElement, text: str) -> None:
    box = row.find_element(By.XPATH, ".//input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)


def click_button(driver: WebDriver, text: str) -> None:
    wait(driver, f"//button[contains(normalize-space(.), '{text}')]").click()


def open_section(driver: WebDriver, title: str) -> None:
    section = wait(
        driver, f"{DIALOG}//button[@data-part='item-trigger'][contains(normalize-space(.), '{title}')]"
    )
    if section.get_attribute("aria-expanded") != "true":
        section.click()


def add_connection(driver: WebDriver, conn_id: str, host: str, api_key: str, shots: Path) -> None:
    """Fill the Add Connection form for a ``sendgrid_marketing`` connection, checking what it draws."""
    click_button(driver, "Add Connection")
    conn_type = wait(driver, f"{DIALOG}//input[@role='combobox']")
    conn_type.send_keys("SendGrid")
    wait(driver, "//*[@role='option'][normalize-space(.)='SendGrid Marketing']").click()
    fill(field_row(driver, "Connection ID"), conn_id)
    open_section(driver, "Standard Fields")
    driver.save_screenshot(str(shots / f"{conn_id}-1-standard-fields.png"))

    host_box = field_row(driver, "Host").find_element(By.XPATH, ".//input")
    assert host_box.get_attribute("placeholder") == "https://api.sendgrid.com"
    key_box = field_row(driver, "API key").find_element(By.XPATH, ".//input")
    assert key_box.get_attribute("placeholder") == "SG.xxxxxxxx"
    for hidden in ("Schema", "Login") if port_shown() else ("Schema", "Port", "Login"):
        assert rows_labelled(driver, hidden) == [], f"{hidden} should be hidden"
    if port_shown():
        # The Test button of these releases needs a stored port: the form asks for it, and says why.
        port_row = field_row(driver, "Port")
        assert PORT_LABEL in port_row.text, port_row.text
        assert port_row.find_element(By.XPATH, ".//input").get_attribute("placeholder") == "443"
        url = urllib.parse.urlsplit(host)
        host = f"{url.scheme}://{url.hostname}"
        fill(port_row, str(url.port))
    fill(field_row(driver, "Host"), host)
    fill(field_row(driver, "API key"), api_key)

    open_section(driver, "Extra Fields")
    for label, description, example in (
        ("Subuser (on-behalf-of)", "Act for this subuser", "marketing-subuser"),
        ("Timeout (seconds)", "Read/write timeout per request", "30"),
    ):
        row = field_row(driver, label)
        WebDriverWait(driver, 10).until(lambda _, shown=row: shown.is_displayed())
        assert description in row.text, row.text
        box = row.find_element(By.XPATH, ".//input")
        assert box.get_attribute("placeholder"), f"{label} shows no placeholder"
        suggestions = row.find_elements(By.XPATH, ".//datalist/option")
        assert [s.get_attribute("value") for s in suggestions] == [example], label
    driver.save_screenshot(str(shots / f"{conn_id}-2-extra-fields.png"))
    click_button(driver, "Save")
    wait(driver, f"//tr[.//*[normalize-space(.)='{conn_id}']]")


def press_test(driver: WebDriver, conn_id: str, shots: Path) -> str:
    """Press the connection's Test button in the list; the text of the toast it raises."""
    row = f"//tr[.//*[normalize-space(.)='{conn_id}']]"
    button = f"{row}//button[@aria-label='Test Connection']"

    def pressed(d: WebDriver) -> bool:
        # The list re-renders while it loads: a button found a moment ago may be gone (stale).
        d.find_element(By.XPATH, button).click()
        return True

    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(pressed)
    titles = " or ".join(f"normalize-space(.)='{title}'" for title in (PASSED, FAILED))
    toast = f"//*[@data-part='root'][.//*[{titles}]]"

    def shown_text(d: WebDriver) -> str:
        # The toast is in the DOM before its text is drawn (seen empty under load): wait for both.
        return next((text for e in d.find_elements(By.XPATH, toast) if (text := e.text.strip())), "")

    text: str = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        shown_text
    )
    driver.save_screenshot(str(shots / f"{conn_id}-3-test.png"))
    return text


def add_connection_with_port(system: System, conn_id: str, api_key: str) -> None:
    """A connection whose port is stored apart from its host (CLI/JSON/REST; the form hides Port)."""
    url = urllib.parse.urlsplit(system.emulator_url)
    body = {
        "connection_id": conn_id,
        "conn_type": "sendgrid_marketing",
        "host": f"{url.scheme}://{url.hostname}",
        "port": url.port,
        "password": api_key,
    }
    system.airflow.api("POST", "/connections", body)


def test_connection_form_draws_the_sendgrid_fields_and_tests_the_connection(
    system: System, browser: WebDriver, screenshots: Path
) -> None:
    driver = browser
    outcomes = {}
    try:
        driver.get(system.airflow.api_url + "/connections")
        for conn_id, api_key in (("sendgrid_ui", system.api_key), ("sendgrid_wrong_key", "SG.wrong-key")):
            add_connection(driver, conn_id, system.emulator_url, api_key, screenshots)
            # The button itself, on a connection made in the form: no "Bad Request" on any release.
            outcomes[conn_id] = press_test(driver, conn_id, screenshots)
        assert PASSED in outcomes["sendgrid_ui"] and "Connected to SendGrid" in outcomes["sendgrid_ui"], (
            outcomes
        )
        wrong = outcomes["sendgrid_wrong_key"]
        assert FAILED in wrong and ("401" in wrong or "API key" in wrong), outcomes
        print(f"\n[connection form] Test button outcomes: {outcomes}")
    except (AssertionError, WebDriverException):
        driver.save_screenshot(str(screenshots / "failure.png"))
        (screenshots / "failure.html").write_text(driver.page_source)
        raise


def test_the_test_button_itself_with_a_stored_port(
    system: System, browser: WebDriver, screenshots: Path
) -> None:
    """The workaround docs/deploying.md gives for Airflow <= 3.3.2 (apache/airflow#73298): with the
    port stored, the button's request matches the stored connection and the hook really runs."""
    driver = browser
    outcomes = {}
    try:
        keys = {"sendgrid_port": system.api_key, "sendgrid_port_wrong_key": "SG.wrong-key"}
        for conn_id, api_key in keys.items():
            add_connection_with_port(system, conn_id, api_key)
        for conn_id in keys:
            # A fresh page each time: no tooltip or toast of the last press in the way.
            driver.get(system.airflow.api_url + "/connections")
            outcomes[conn_id] = press_test(driver, conn_id, screenshots)
        right = outcomes["sendgrid_port"]
        assert PASSED in right and "Connected to SendGrid" in right, outcomes
        wrong = outcomes["sendgrid_port_wrong_key"]
        assert FAILED in wrong and "401" in wrong, outcomes
        print(f"\n[connection form] Test button outcomes with a stored port: {outcomes}")
    except (AssertionError, WebDriverException):
        driver.save_screenshot(str(screenshots / "failure-port.png"))
        (screenshots / "failure-port.html").write_text(driver.page_source)
        raise
