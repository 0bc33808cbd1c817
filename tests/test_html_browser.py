"""The HTML of `shufflenet profile shufflenet_v2_x0_5` opened in a real browser (headless Chromium via
Playwright): no console or page errors, every image decoded (``naturalWidth > 0``) and laid out, the tables
rendered. A screenshot of each page is saved (to ``$SHUFFLENET_SCREENSHOT_DIR`` when set, else the test's
temporary directory) for a person to look at.

Needs the ``playwright`` Python package and a Chromium binary (Debian's ``chromium`` package; Playwright's
own browser download is not used): skipped only when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import CHROMIUM, open_in_browser, screenshot_dir
from shufflenet.cli.main import main

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
pytest.importorskip("matplotlib", reason="the page's figure needs matplotlib")


pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium binary (apt-get install chromium)")

PROFILE = ["--quiet", "profile", "shufflenet_v2_x0_5", "--input", "1x3x96x96", "--repeats", "3", "--warmup", "1",
           "--ceilings", "none", "--no-total"]


@pytest.fixture
def shots(tmp_path) -> Path:
    return screenshot_dir(tmp_path)


def test_profile_html_page_in_chromium(tmp_path, shots, capsys) -> None:
    """`--out page.html`: the whole page, its figure embedded, opens cleanly with the figure visible."""
    page_path = tmp_path / "profile.html"
    assert main([*PROFILE, "--out", str(page_path)]) == 0, capsys.readouterr().err
    seen = open_in_browser(page_path, shots / "profile_page.png")
    assert seen["errors"] == []
    assert len(seen["images"]) == 1  # the op-type breakdown chart
    for img in seen["images"]:
        assert img["w"] > 0 and img["h"] > 0, img  # decoded
        assert img["shown"] > 200, img  # laid out at a legible size
    assert len(seen["tables"]) == 2 and all(t["rows"] > 2 and t["width"] > 100 for t in seen["tables"])
    assert "Conv (depthwise)" in seen["text"] and "Fig. 2 categories" in seen["text"]
    assert (shots / "profile_page.png").stat().st_size > 10_000


def test_profile_html_fragment_in_chromium(tmp_path, shots, capsys) -> None:
    """`--format html` on stdout: the fragment alone (no <html> around it) renders in a browser too."""
    assert main([*PROFILE, "--format", "html"]) == 0
    fragment = capsys.readouterr().out
    assert fragment.lstrip().startswith('<section class="shufflenet-result">')
    page_path = tmp_path / "fragment.html"
    page_path.write_text(fragment, encoding="utf-8")
    seen = open_in_browser(page_path, shots / "profile_fragment.png")
    assert seen["errors"] == []
    assert len(seen["images"]) == 1 and seen["images"][0]["w"] > 0 and seen["images"][0]["shown"] > 200
    assert len(seen["tables"]) == 2
