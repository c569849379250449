"""The console in a real browser (Playwright driving Debian's chromium) against the real
``serve --with-daemon`` and the sandbox: upload the sample through the page, preview, create,
pause and resume, watch it reach 100 %, download the report and read it with pandas. Hostile
cells stay text. A screenshot goes to tests/artifacts/console.png."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console_helpers import serve, with_daemon

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "contacts.csv"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_NOTE = "=cmd|' /C calc'!A0"
FINAL = {"done", "exhausted", "invalid", "suppressed", "expired", "cancelled"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _open(
    browser: Browser, base_url: str, token: str, *, width: int = 1280, height: int = 800
) -> tuple[Page, list[str]]:
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{base_url}/#token={token}")
    expect(page.locator("#app")).to_be_visible()
    return page, dialogs


def _fill(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        page.fill(f"#create-form [name={name}]", value)


@pytest.mark.slow
def test_sample_campaign_end_to_end_in_the_browser(
    browser: Browser, sqlite_url: str, tmp_path: Path, sandbox_factory
) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("--answer-rate", "0.7", "--call-seconds", "1-2", "--seed", "5")
    daemon = with_daemon(sandbox.base_url, "3/s")
    with serve(sqlite_url, tmp_path, *daemon) as console:
        page, dialogs = _open(browser, console.base_url, console.token)
        _fill(
            page,
            name="Browser campaign",
            window="00:00-24:00",
            days="all",
            max_attempts="2",
            retry_delay="1s",
        )
        page.set_input_files("#file", str(SAMPLE))
        expect(page.locator("#preview")).to_be_visible()
        counts = page.locator("#preview-counts")
        expect(counts).to_contain_text("valid31")
        expect(counts).to_contain_text("duplicates1")
        expect(page.locator("#preview-sample")).to_contain_text("Prestige Lakeside Habitat")
        page.click("#create")

        card = page.locator(".card").first
        expect(card).to_contain_text("Browser campaign")
        expect(page.locator("#detail")).to_be_visible()
        page.click("[data-action=pause]")
        expect(page.locator("#detail-status")).to_have_attribute("data-status", "paused")
        expect(card.locator(".status")).to_have_text("paused")
        expect(card.locator(".progress-pct")).not_to_have_text("100% finished")
        page.click("[data-action=resume]")
        expect(page.locator("#detail-status")).to_have_attribute("data-status", "running")

        expect(card.locator(".progress-pct")).to_have_text("100% finished", timeout=120_000)
        expect(card).to_contain_text("Pickup rate")
        expect(card.locator(".status")).to_have_text(
            "completed", timeout=30_000
        )  # the daemon closes it
        page.click("#detail-title")  # the chart and the contacts of the finished campaign
        expect(page.locator("#chart svg rect").first).to_be_attached()
        page.fill("#q", "Aarav")
        expect(page.locator("#contacts tbody tr")).to_have_count(1)
        page.fill("#q", "")
        page.select_option("#state", "invalid")  # the duplicate, the bad and the missing number
        expect(page.locator("#contacts tbody tr")).to_have_count(3)
        page.select_option("#state", "")
        expect(page.locator("#contacts tbody tr")).to_have_count(34)

        with page.expect_download() as info:
            page.click("#download")
        report_path = tmp_path / "report.csv"
        info.value.save_as(report_path)
        report = pd.read_csv(report_path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        assert len(report) == 34 and "phone_e164" in report.columns
        assert set(report["state"]) <= FINAL
        assert (report["state"] == "done").sum() + (report["state"] == "exhausted").sum() == 31
        assert (
            report.loc[report["customer_name"] == "Aarav Sharma", "property_name"].item()
            == "Prestige Lakeside Habitat"
        )

        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "console.png"))
        assert dialogs == []

        phone, _ = _open(browser, console.base_url, console.token, width=390, height=844)
        expect(phone.locator(".card").first).to_contain_text("100% finished")
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        phone.screenshot(path=str(ARTIFACTS / "console-phone.png"))


def test_hostile_cells_are_shown_as_text(browser: Browser, sqlite_url: str, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.csv"
    shutil.copy(SAMPLE, hostile)
    with hostile.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(
            [
                HOSTILE_NAME,
                "+91 99000 11111",
                HOSTILE_NOTE,
                "<img src=x onerror=alert(2)>",
                "",
                "",
                "",
            ]
        )
    with serve(sqlite_url, tmp_path) as console:
        page, dialogs = _open(browser, console.base_url, console.token)
        page.set_input_files("#file", str(hostile))
        expect(page.locator("#preview")).to_be_visible()
        page.click("#create")
        expect(page.locator("#contacts tbody tr")).to_have_count(35)
        page.fill("#q", "script")
        row = page.locator("#contacts tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text(HOSTILE_NAME)
        expect(row).to_contain_text(HOSTILE_NOTE)
        expect(row).to_contain_text("<img src=x onerror=alert(2)>")
        assert page.locator("#contacts script, #contacts img").count() == 0
        page.wait_for_timeout(300)  # give an injected handler the chance to fire, if any
        assert dialogs == []


def test_the_page_asks_for_the_token_and_keeps_it_for_the_session(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    with serve(sqlite_url, tmp_path) as console:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{console.base_url}/#token=wrong")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-error")).to_contain_text("refused")
        assert "wrong" not in page.url  # the token leaves the address bar
        page.fill("#token-input", console.token)
        page.click("#token-form button")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#campaigns")).to_contain_text("No campaign yet")
        page.reload()  # sessionStorage keeps it: no second prompt
        expect(page.locator("#app")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('vaani-token')") == console.token
        context.close()
