"""Real-browser tests: Debian's Chromium driven by Playwright (never a
downloaded browser). `launch_chromium(*args)` starts a headless Chromium with
extra command-line switches (a fake camera, say) and closes it after the test."""

from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def playwright():
    """Playwright's sync API runs an event loop in this thread until it stops: per module, so
    that later tests (Rasa SDK actions calling asyncio.run) do not find a loop running."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (scripts/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch_chromium(playwright):
    browsers = []

    def launch(*args: str):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", *args])
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()
