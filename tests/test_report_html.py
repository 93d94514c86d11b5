"""The HTML report: its content, and, in headless Chromium, that it loads without console
errors, that the gallery switches images and that zoom acts on every tile at once.

The browser part needs Debian's ``chromium`` (``.ci/install-browser.sh``) and Playwright's
Python package; it is skipped without them.
"""

from __future__ import annotations

import pytest
from browser_support import NEEDS_CHROMIUM, launch
from click.testing import CliRunner
from plugin_fixtures import tiny_host

import llbench
from llbench.cli.main import cli
from llbench.reports.html import write_html_report
from llbench.reports.report import build_report


@pytest.fixture
def stored(home, monkeypatch):
    h = tiny_host(home, monkeypatch)
    for config in ({}, {"gamma": 0.8}):
        llbench.run(
            "brighten",
            "tiny",
            home=home,
            progress=False,
            host=h,
            metrics=["mean", "peak"],
            config=config,
        )
    return home, h


def test_report_page_holds_tables_figures_gallery_provenance_definitions(stored, tmp_path):
    home, h = stored
    rep = build_report(home=home, host=h, baseline="brighten")
    out = tmp_path / "r.html"
    text = write_html_report(rep, out, home=home, embed=False)
    for part in (
        '<div class="results"><table>',
        'id="figures"',
        'class="gallery"',
        'id="provenance"',
        "mean of all pixel values",  # the metric's definition
        "Wilcoxon",
        "brighten (gamma=0.8)",
    ):
        assert part in text
    files = sorted((tmp_path / "r_files").iterdir())
    assert any(f.suffix == ".svg" for f in files) and any(f.suffix == ".png" for f in files)
    assert "r_files/" in text and "data:image" not in text
    embedded = write_html_report(rep, None, home=home)
    assert "data:image/png;base64," in embedded and "r_files/" not in embedded
    r = CliRunner().invoke(cli, ["report", "--format", "html", "-o", str(tmp_path / "c.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.html").read_text().count('class="tile"') == 0  # tiles are built by JS
    assert "img0" in (tmp_path / "c.html").read_text()


@pytest.mark.browser
@NEEDS_CHROMIUM
@pytest.mark.parametrize("embed", [False, True])
def test_report_in_headless_chromium(stored, tmp_path, embed):
    sync_api = pytest.importorskip("playwright.sync_api")
    home, h = stored
    rep = build_report(home=home, host=h)
    out = tmp_path / "report.html"
    write_html_report(rep, out, home=home, embed=embed)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri(), timeout=10_000)
            page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=10_000)
            gallery = page.locator("section.gallery").first
            titles = gallery.locator("figcaption > div:first-child").all_text_contents()
            assert titles == ["Input", "brighten", "brighten (gamma=0.8)", "Ground truth"]
            assert "mean" in gallery.locator(".scores").first.text_content()
            # every image of the gallery loads
            page.wait_for_function(
                "() => [...document.querySelectorAll('.tile img')]"
                ".every(i => i.complete && i.naturalWidth > 0)",
                timeout=10_000,
            )
            first_src = gallery.locator("img").nth(1).get_attribute("src")
            assert gallery.get_attribute("data-image") == "img0"
            gallery.locator("button.next").click()
            assert gallery.get_attribute("data-image") == "img1"
            assert gallery.locator("img").nth(1).get_attribute("src") != first_src
            gallery.locator("select.image").select_option("3")
            assert gallery.get_attribute("data-image") == "img3"
            # zoom: a click on one tile zooms every tile into the same spot
            frame = gallery.locator(".frame").nth(2)
            box = frame.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
            transforms = gallery.locator(".tile img").evaluate_all(
                "els => els.map(e => [e.style.transform, e.style.transformOrigin])"
            )
            assert len({tuple(t) for t in transforms}) == 1
            assert transforms[0][0] == "scale(4)"
            ox, oy = (float(v.rstrip("%")) for v in transforms[0][1].split())
            assert ox == pytest.approx(25, abs=3) and oy == pytest.approx(75, abs=3)
            page.mouse.wheel(0, -100)
            assert float(gallery.get_attribute("data-zoom")) == pytest.approx(5.0)
            gallery.locator("button.next").click()  # zoom stays while switching images
            assert gallery.locator(".tile img").first.evaluate("e => e.style.transform") == (
                "scale(5)"
            )
            page.keyboard.press("Escape")
            assert gallery.get_attribute("data-zoom") == "1"
            assert not errors, errors
        finally:
            browser.close()
