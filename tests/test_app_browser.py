"""The app in a real browser: `streamlit run app.py` on a local port, headless Debian chromium via
selenium, wait for the headline cards, save a screenshot.

Skips (with the reason) only where chromium or chromedriver is not installed; nothing is downloaded
(the driver path is passed explicitly, so selenium-manager never runs).
Then it opens every view (tab) and saves a screenshot of each, checking none shows an error
(SENDPLAN_SCREENSHOTS=FOLDER keeps them there).
SENDPLAN_SCREENSHOT=docs/screenshot.png also copies the first screenshot there (the README's picture);
that run uses the scenario's own settings rather than the quick test settings.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SCREENSHOT_TO = os.environ.get("SENDPLAN_SCREENSHOT")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"streamlit exited with {proc.returncode}:\n{out}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def app_url() -> Iterator[str]:
    """`streamlit run app.py` on a free local port; always terminated afterwards."""
    port = _free_port()
    env = dict(os.environ)
    if not SCREENSHOT_TO:  # quick settings for the test; the README screenshot uses the defaults
        # five years: the 10% independent cap's rounded plan is then outside the 1% plan gap
        env.update({"SENDPLAN_APP_HORIZON": "5", "SENDPLAN_APP_PATHS": "20"})
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, timeout=60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def driver() -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sendplan-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument("--window-size=1500,1050")
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _idle(d) -> bool:
    """The page has finished a rerun: no spinner, no 'running' status."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        busy = d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]') or [
            e for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]') if e.text
        ]
    except StaleElementReferenceException:  # re-rendered while we read it: still busy
        return False
    return not busy


def _tab(driver, name: str):
    """The tab labelled ``name``."""
    tabs = driver.find_elements(By.CSS_SELECTOR, '[role="tab"]')
    found = [(t.get_attribute("textContent") or "").strip() for t in tabs]
    assert name in found, (name, found)
    return tabs[found.index(name)]


def _screenshot_each_view(driver, folder: Path, views: tuple[str, ...]) -> list[Path]:
    """Open every view (tab) in turn and save a screenshot of it; each view draws without error."""
    from selenium.webdriver.support.ui import WebDriverWait

    shots = []
    for k, name in enumerate(views):
        _tab(driver, name).click()
        time.sleep(0.5)
        WebDriverWait(driver, 120, poll_frequency=0.5).until(_idle)
        time.sleep(1.5)  # let plotly finish drawing
        # The page reran: find the tab afresh (the old element is gone).
        assert _tab(driver, name).get_attribute("aria-selected") == "true", name
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), name
        shot = folder / f"view-{k + 1}-{name.lower().replace(' ', '-')}.png"
        assert driver.save_screenshot(str(shot)), name
        assert shot.read_bytes().startswith(PNG_MAGIC), name
        shots.append(shot)
    return shots


def _click_text(driver, css: str, text: str) -> None:
    """Click the element matching ``css`` whose text is ``text``."""
    hits = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip() == text]
    assert hits, (css, text)
    hits[0].click()


def _settle(driver) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    time.sleep(0.8)
    WebDriverWait(driver, 180, poll_frequency=0.5).until(_idle)
    time.sleep(0.5)


def _run_caption(driver) -> str:
    """The caption under the title naming the scenario as run (edits included)."""
    texts = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]')
    ]
    return next(t for t in texts if "base year" in t)


def _levers_reset_on_a_source_switch(driver) -> None:
    """The browser keeps its own copy of every widget's value: after a source switch the sidebar
    must show the new scenario's values, and the next Apply must not bring the old ones back."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def growth() -> float:  # the EHCP growth slider is the sidebar's first slider
        slider = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSlider"]')[0]
        text = slider.find_element(By.CSS_SELECTOR, '[data-testid="stSliderThumbValue"]').text
        return float(text)

    from model.io import load_scenario
    from model.levers import levers_from

    # Devon does not type its growth: the lever starts at the rate pooled across LAs
    start = round(levers_from(load_scenario(None).scenario).growth * 100, 2)
    assert growth() == pytest.approx(start)
    thumb = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"]')[0]
    driver.execute_script("arguments[0].focus()", thumb)
    ActionChains(driver).send_keys(*([Keys.ARROW_RIGHT] * 8)).perform()  # about +4%, 0.5 steps
    time.sleep(0.5)
    moved = growth()
    assert moved > start + 3
    _click_text(driver, "button", "Apply")
    _settle(driver)
    title = _run_caption(driver)
    assert "growth 0.1" in title, title  # the typed growth names the edited scenario
    _click_text(driver, "label", "A file in scenarios/")  # scenarios/devon.yaml: growth learned
    _settle(driver)
    assert growth() == pytest.approx(start)
    _click_text(driver, "button", "Apply")
    _settle(driver)
    title = _run_caption(driver)
    assert "growth" not in title, title  # the old scenario's 14% did not come back


def _alerts(driver, kind: str) -> list[str]:
    """The texts of the page's alerts of one kind ("Info", "Warning", "Error"), read again while
    the page redraws under us."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            found = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="stAlertContent{kind}"]')
            return [e.text for e in found]
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"the page kept redrawing its {kind} alerts")


def _a_first_answer_is_refined_by_itself(driver) -> None:
    """A 10% independent cap over five years: the rounded plan is outside the 1% gap, so the
    page answers first with it and a notice, then shows the refined plan by itself (its poll
    reruns the page once branch and bound is done), with no notice left."""
    from selenium.webdriver.support.ui import WebDriverWait

    policy = [
        e for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
        if "Policy" in e.text
    ]  # fmt: skip
    assert policy
    policy[0].click()
    time.sleep(0.5)
    _click_text(driver, "label", "Cap the independent share")
    _click_text(driver, "button", "Apply")
    wait = WebDriverWait(driver, 180, poll_frequency=0.25)
    wait.until(lambda d: any(t.startswith("First answer.") for t in _alerts(d, "Info")))
    assert any("branch and bound was deferred" in t for t in _alerts(driver, "Warning"))
    # no click, no key: the page redraws itself with the refined plan
    wait.until(lambda d: not any(t.startswith("First answer.") for t in _alerts(d, "Info")))
    _settle(driver)
    assert not any("branch and bound was deferred" in t for t in _alerts(driver, "Warning"))
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert "independent cap 0.1" in _run_caption(driver)


def test_app_shows_headline_cards_in_a_real_browser(
    app_url: str, driver, tmp_path: Path, app_module
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(app_url)
    wait = WebDriverWait(driver, 240 if SCREENSHOT_TO else 120, poll_frequency=0.5)

    def cards_ready(d) -> bool:
        labels = [e.text for e in d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')]
        spinning = d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]')
        return len(labels) == 4 and not spinning

    wait.until(cards_ready)
    labels = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')
    ]
    assert labels[0].startswith("EHCPs, January")
    assert "Saving (central forecast)" in labels
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    # Let the first chart finish drawing so the screenshot shows it.
    try:
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
        )
    except Exception:
        pass  # a run without charts (stages absent) still has cards to show
    time.sleep(1.0)
    shot = tmp_path / "app.png"
    assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    shots = Path(os.environ.get("SENDPLAN_SCREENSHOTS") or tmp_path)  # keep them: set a folder
    shots.mkdir(parents=True, exist_ok=True)
    _screenshot_each_view(driver, shots, app_module.VIEWS)
    if not SCREENSHOT_TO:  # the README screenshot run leaves the levers alone
        _a_first_answer_is_refined_by_itself(driver)
        _levers_reset_on_a_source_switch(driver)
    if SCREENSHOT_TO:
        target = Path(SCREENSHOT_TO)
        if not target.is_absolute():
            target = ROOT / target
        target.write_bytes(data)
