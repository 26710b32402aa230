"""The web page at / in a real headless browser (Debian's chromium through selenium): type a
query, see the expected hit with its per-leg scores; open its document; browse an agent
memory's history; read the stats; a bad key shows the server's error."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi", reason="vecmem[serve] is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed "
        "(apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from tests._serve import running  # noqa: E402
from vecmem.agent_memory import AgentMemory  # noqa: E402
from vecmem.memory import VectorMemory  # noqa: E402
from vecmem.serve import Service, create_app  # noqa: E402
from vecmem.serve.auth import KeyTable  # noqa: E402

KEY = "page-key-0123456789"


@pytest.fixture(scope="module")
def site():
    svc = Service(
        VectorMemory(embedder="hashing"), agent=AgentMemory(VectorMemory(embedder="hashing"))
    )
    acme = svc.view("acme")
    acme.add(
        [
            "Lighthouses guide ships along rocky coasts at night.",
            "Sourdough bread needs a starter and a long rise.",
            "The comet returns every 76 years.",
        ],
        ids=["lighthouse", "bread", "comet"],
        metadata=[{"source": "sea.md"}, {"source": "bakery.md"}, {"source": "sky.md"}],
    )
    w = acme.remember("Mia bakes sourdough on weekends", user_id="mia")
    acme.update(
        w["memory_id"], "Mia bakes rye bread on weekends", user_id="mia", reason="she switched"
    )
    svc.view("other").add(["Lighthouses of another tenant."], ids=["their-lighthouse"])
    keys = KeyTable.parse(f"{KEY} acme\n", source="t")
    with running(create_app(svc, keys=keys, mcp=False)) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
    ):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, css: str, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def test_search_shows_the_expected_hit_with_leg_scores(site, browser):
    browser.get(site + "/")
    key = browser.find_element(By.ID, "key")
    key.clear()
    key.send_keys(KEY)
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
    browser.find_element(By.ID, "query").send_keys("lighthouse ships at night")
    browser.find_element(By.ID, "search-btn").click()
    first = wait(browser, "#hits tbody tr.hit")
    rows = browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr.hit")
    assert first.get_attribute("data-doc") == "lighthouse"
    assert "their-lighthouse" not in [r.get_attribute("data-doc") for r in rows]
    assert "Lighthouses guide ships" in first.text
    assert first.find_element(By.CSS_SELECTOR, "td.vector").text.endswith("(1)")
    assert first.find_element(By.CSS_SELECTOR, "td.keyword").text.endswith("(1)")
    assert "sea.md" in first.text
    # keyword mode with a filter
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("keyword")
    q = browser.find_element(By.ID, "query")
    q.clear()
    q.send_keys("sourdough starter")
    browser.find_element(By.ID, "filter").send_keys('{"source": "bakery.md"}')
    browser.find_element(By.ID, "search-btn").click()
    WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#hits tbody tr.hit").get_attribute("data-doc")
            == "bread"
        )
    )
    assert "keyword" in browser.find_element(By.ID, "search-info").text
    # its document
    browser.find_element(By.CSS_SELECTOR, "#hits tbody tr.hit a.doc").click()
    chunk = wait(browser, "#chunks tbody tr.chunk")
    assert "bread#0" in chunk.text and "Sourdough bread" in chunk.text
    browser.find_element(By.ID, "doc-list-btn").click()
    wait(browser, "#doclist tbody tr.doc")
    listed = [
        r.find_element(By.CSS_SELECTOR, "a.doc").text
        for r in browser.find_elements(By.CSS_SELECTOR, "#doclist tbody tr.doc")
    ]
    assert listed == ["lighthouse", "bread", "comet"]  # not the other tenant's
    assert browser.find_element(By.ID, "doc-info").text.startswith("3 documents")


def test_memory_browser_history_and_stats(site, browser):
    browser.get(site + "/")
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='memory']").click()
    browser.find_element(By.ID, "mem-user").send_keys("mia")
    browser.find_element(By.CSS_SELECTOR, "#mem-form button").click()
    row = wait(browser, "#memories tbody tr.memory")
    assert "Mia bakes rye bread on weekends" in row.text
    row.find_element(By.CSS_SELECTOR, "a.mem").click()
    wait(browser, "#history tr.change")
    ops = [
        r.find_elements(By.TAG_NAME, "td")[1].text
        for r in browser.find_elements(By.CSS_SELECTOR, "#history tr.change")
    ]
    assert ops == ["create", "update"]
    versions = browser.find_elements(By.CSS_SELECTOR, "#history tr.version")
    assert "sourdough" in versions[0].text and "closed" in versions[0].text
    assert "rye" in versions[1].text and "current" in versions[1].text
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='stats']").click()
    WebDriverWait(browser, 15).until(lambda d: "acme" in d.find_element(By.ID, "stats").text)
    assert "hashing-256" in browser.find_element(By.ID, "stats").text
    chunks_row = [
        r.text.lower()
        for r in browser.find_elements(By.CSS_SELECTOR, "#stats tr")
        if r.text.lower().startswith("chunks")
    ]
    assert chunks_row == ["chunks 3"]  # acme's three, not the other tenant's


def test_a_wrong_key_shows_the_servers_error(site, browser):
    browser.get(site + "/")
    key = browser.find_element(By.ID, "key")
    key.clear()
    key.send_keys("not-the-key")
    browser.find_element(By.ID, "query").send_keys("comet")
    browser.find_element(By.ID, "search-btn").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text.startswith("401 Unauthorized")
