"""Headless Chromium for the browser tests (the site, the nbgrader feedback page, JupyterLab).

Debian's chromium and chromium-driver; `.ci/run` installs them. Screenshots go to artifacts/ in the
checkout, to be looked at after a run.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "artifacts"


def chromium(window: tuple[int, int]):
    """A headless Chromium driver for a fixture to yield; skips (fails on CI) when none is installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed; .ci/run installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def viewport(driver, size, mobile: bool = False, height: int | None = None) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": height or size[1], "deviceScaleFactor": 1, "mobile": mobile})


def full_page_screenshot(driver, path: Path, size, mobile: bool = False) -> Path:
    """The whole page: grow the viewport to the document's height, capture, then restore it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    viewport(driver, size, mobile, height=min(height, 15000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    viewport(driver, size, mobile)
    return path
