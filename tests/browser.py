"""A real browser for the HTML tests: headless Chromium (Debian's ``chromium`` package, never Playwright's
own download) driven by Playwright through ``executable_path``. ``CHROMIUM`` is ``None`` when no binary is
installed; the tests that need it skip only then (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = chromium_path()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$SHUFFLENET_SCREENSHOT_DIR`` when set (for a person to look at), else
    ``tmp_path``."""
    d = Path(os.environ.get("SHUFFLENET_SCREENSHOT_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def open_in_browser(page_path: Path, screenshot: Path, *, width: int = 1280,
                    selectors: dict[str, str] | None = None) -> dict[str, Any]:
    """Load ``page_path`` in headless Chromium and return what it saw: console/page/request errors, every
    image's natural and shown size, every table's rows and width, the body text, the texts of ``selectors``
    (name -> CSS selector), and how many table wrappers scroll sideways. Saves a full-page screenshot."""
    from playwright import sync_api

    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, "
                       "shown: i.getBoundingClientRect().width, alt: i.alt}))")
            tables = page.eval_on_selector_all(
                "table", "ts => ts.map(t => ({rows: t.rows.length, width: t.getBoundingClientRect().width}))")
            found = {name: page.eval_on_selector_all(sel, "es => es.map(e => e.innerText)")
                     for name, sel in (selectors or {}).items()}
            page_width = page.evaluate("document.documentElement.scrollWidth")
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "images": images, "tables": tables, "text": text, "found": found,
            "page_width": page_width}
