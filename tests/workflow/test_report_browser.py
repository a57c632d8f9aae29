"""The Snakemake report of the demo, opened in headless Chromium (Debian ``chromium`` and
``chromium-driver``, driven by selenium): every stage's section is there, every result opens and
every image is decoded and displayed, and the page logs no JavaScript error."""

import shutil
import time
from pathlib import Path

import pytest
from workflow_util import run_snakemake

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Debian chromium and chromium-driver are not installed (`make test` installs them "
    "where root; else: apt-get install chromium chromium-driver)",
)

SECTIONS = {"Sentinel-2 conversions", "BigEarthNet v2", "Chips", "Storage lab", "Provenance"}
WAIT_S = 20


@pytest.fixture(scope="module")
def report(demo_run):
    """The demo's report HTML (built by ``snakemake --report`` in the demo's copy)."""
    out = demo_run / "results" / "report" / "report.html"
    proc = run_snakemake(demo_run, "--profile", "profiles/local", "--report", str(out))
    assert proc.returncode == 0, proc.stderr[-5000:]
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(condition, what: str):
    """Poll ``condition`` until it returns something truthy (the report renders with React)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def nav_links(driver) -> dict:
    """The menu's links by text (the breadcrumb, an <ol>, left out)."""
    from selenium.webdriver.common.by import By

    links = driver.find_elements(By.XPATH, "//nav//a[not(ancestor::ol)]")
    return {a.text.strip(): a for a in links if a.text.strip()}


def open_home(driver, url: str) -> dict:
    driver.get(url)
    return wait_for(
        lambda: (links := nav_links(driver)) and "Statistics" in links and links, "menu"
    )


def shown_result(driver, filename: str) -> str:
    """What the main panel shows of ``filename`` (its data URI names it): 'image' once the <img>
    is decoded and laid out, 'page' for an HTML result's frame; '' while loading."""
    return driver.execute_script(
        """
        const main = document.querySelector('#app div.grow');
        const tag = `filename=${arguments[0]};`;
        const img = main && main.querySelector('img');
        if (img && img.src.includes(tag)) {
            const box = img.getBoundingClientRect();
            return img.complete && img.naturalWidth > 0 && box.width > 0 ? 'image' : '';
        }
        const frame = main && main.querySelector('iframe');
        return frame && frame.src.startsWith('data:text/html') && frame.src.includes(tag)
            ? 'page' : '';
        """,
        filename,
    )


def open_results(driver, url: str, path: list[str]) -> list[str]:
    """Open every result listed under the menu path (category[, subcategory]); the file names
    whose image (or page) was displayed."""
    from selenium.webdriver.common.by import By

    open_home(driver, url)
    for name in path:
        wait_for(lambda n=name: n in nav_links(driver), name)
        nav_links(driver)[name].click()
    rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "nav table tbody tr"), "files")
    shown = []
    for i in range(len(rows)):
        row = driver.find_elements(By.CSS_SELECTOR, "nav table tbody tr")[i]
        name = row.find_element(By.TAG_NAME, "td").text.strip()
        row.find_element(By.CSS_SELECTOR, "a[iconname=eye]").click()
        filename = name.rsplit("/", 1)[-1]
        kind = wait_for(lambda f=filename: shown_result(driver, f), f"{name} to be displayed")
        shown.append((name, kind))  # the file list stays in the menu for the next row
    return shown


def test_every_section_and_image_displays_without_console_errors(report, browser):
    url = report.resolve().as_uri()
    home = open_home(browser, url)
    assert SECTIONS <= set(home), f"sections missing: {SECTIONS - set(home)}"

    shown = []
    for section in sorted(SECTIONS):
        open_home(browser, url)
        nav_links(browser)[section].click()
        # A section lists its files, or its subcategories (one per tile-year) first.
        wait_for(
            lambda: (
                browser.find_elements("css selector", "nav table tbody tr")
                or set(nav_links(browser)) - set(home)
            ),
            f"section {section}",
        )
        subcategories = sorted(set(nav_links(browser)) - set(home))
        paths = [[section, sub] for sub in subcategories] or [[section]]
        for path in paths:
            shown += open_results(browser, url, path)

    report_dir = report.parent
    expected = {
        str(p.relative_to(report.parents[2]))
        for p in report_dir.rglob("*")
        if p.suffix in (".png", ".html") and p != report
    }
    names = {name for name, _ in shown}
    assert names == expected, f"not in the report: {expected - names}; extra: {names - expected}"
    assert all(kind == "image" for name, kind in shown if name.endswith(".png"))
    assert ("results/report/provenance.html", "page") in shown
    # One chart per stage at least (the sections are not empty shells).
    for folder in ("sentinel2", "benv2", "chips"):
        assert any(n.startswith(f"results/report/{folder}/") for n in names), folder

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
