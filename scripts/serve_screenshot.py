"""Screenshot of the served page for the README: index the bundled sample, serve it, run a
search in headless chromium (Debian's), save docs/serve-page.png.

    python scripts/serve_screenshot.py [--embedder all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from tests._serve import running
    from vecmem.agent_memory import AgentMemory
    from vecmem.memory import VectorMemory
    from vecmem.serve import Service, create_app

    p = argparse.ArgumentParser()
    p.add_argument("--embedder", default="hashing")
    p.add_argument("--query", default="does coffee late in the day hurt sleep")
    p.add_argument("--out", default=str(ROOT / "docs" / "serve-page.png"))
    a = p.parse_args()
    mem = VectorMemory(embedder=a.embedder)
    rows = [json.loads(line) for line in open(ROOT / "vecmem" / "data" / "sample" / "corpus.jsonl")]
    mem.add(
        [f"{r['title']}\n\n{r['text']}" for r in rows],
        ids=[r["_id"] for r in rows],
        metadata=[{"source": "sample/corpus.jsonl", "title": r["title"]} for r in rows],
    )
    svc = Service(mem, agent=AgentMemory(VectorMemory(embedder=mem.embedder)))
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,760",
        "--hide-scrollbars",
    ):
        opts.add_argument(arg)
    with running(create_app(svc, keys=None, open_access=True, mcp=False)) as base:
        driver = webdriver.Chrome(
            options=opts,
            service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
        )
        try:
            driver.get(base + "/")
            driver.find_element(By.ID, "query").send_keys(a.query)
            driver.find_element(By.ID, "k").clear()
            driver.find_element(By.ID, "k").send_keys("5")
            driver.find_element(By.ID, "search-btn").click()
            WebDriverWait(driver, 20).until(
                EC.visibility_of_element_located((By.CSS_SELECTOR, "#hits tbody tr.hit"))
            )
            driver.save_screenshot(a.out)
        finally:
            driver.quit()
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
