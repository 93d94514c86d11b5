"""End to end in headless Chromium: scripted participants complete a small study by clicking.

Needs Debian's ``chromium`` (``.ci/install-browser.sh``) and Playwright's Python package; it uses
the system browser (``executable_path``), never a Playwright browser download.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from browser_support import NEEDS_CHROMIUM, READY, launch
from PIL import Image

from llbench.store.database import Store

METHODS = ("he", "lime", "sgz")  # the scripted participant prefers later ones

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright's Python package (pip install playwright)"
)


def _run(home: Path, method: str, value: int, images=("im1", "im2")) -> None:
    store = Store(home)
    key = f"{method}-run"
    out = Path("runs") / method / "lolv2" / key
    store.start_run(key, method=method, dataset="lolv2", split="test", out_dir=str(out))
    for k, img in enumerate(images):
        rel = out / f"{img}.png"
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        arr = np.zeros((48, 64, 3), dtype=np.uint8)
        arr[..., 0] = value
        arr[8:40, 8 + 8 * k : 24 + 8 * k, 1] = 255  # some detail to zoom into
        Image.fromarray(arr).save(home / rel)
        sha = hashlib.sha256((home / rel).read_bytes()).hexdigest()
        store.record_item(key, img, "ok", output=str(rel), sha256=sha)
    store.finish_run(key, "finished")


@pytest.fixture
def served(home):
    from llbench.study import StudyServer, create_study_from_runs

    for i, m in enumerate(METHODS):
        _run(home, m, 40 + 80 * i)
    create_study_from_runs(home, "web", list(METHODS), "lolv2", seed=7, images="first:1")
    srv = StudyServer(home, "web", port=0).start()
    yield home, srv
    srv.stop()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def _conditions(home: Path, page) -> tuple[str, str]:
    from llbench.study import StudyStore

    files = StudyStore(home).images("web")
    left = page.get_attribute("#img-left", "src").rsplit("/", 1)[1]
    right = page.get_attribute("#img-right", "src").rsplit("/", 1)[1]
    return files[left].condition, files[right].condition


def _transform(page, sel: str) -> str:
    return page.eval_on_selector(sel, "el => el.style.transform")


def _wait_next(page, previous: str) -> None:
    page.wait_for_function(
        "prev => document.body.dataset.state === 'done' || "
        "(document.body.dataset.state === 'ready' && document.body.dataset.item !== prev)",
        arg=previous,
        timeout=10_000,
    )


def test_participant_completes_study_by_clicking(served, browser):
    from llbench.study import StudyStore, score_study

    home, srv = served
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(srv.url, timeout=10_000)
    page.wait_for_function("() => document.body.dataset.state === 'login'", timeout=10_000)
    assert page.title() == "Which image looks better?"
    page.fill("#participant", "alice")
    page.click("#start")
    page.wait_for_function(READY, timeout=10_000)
    assert page.is_visible("#pair") and not page.is_visible("#login")
    assert page.text_content("#progress-text").strip() == "Pair 1 / 3"
    assert re.fullmatch(r"\d+:\d\d", page.text_content("#elapsed"))

    expected = []
    for step in range(10):  # bounded: 3 pairs
        if page.evaluate("document.body.dataset.state") == "done":
            break
        item = page.evaluate("document.body.dataset.item")
        left, right = _conditions(home, page)
        better = "left" if METHODS.index(left) > METHODS.index(right) else "right"
        if step == 0:
            # zoom with the wheel over image A: both images zoom together
            box = page.locator('#pair .viewport[data-side="left"]').bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
            page.mouse.wheel(0, -400)
            page.wait_for_function(
                "() => /scale\\((?!1\\))/.test(document.getElementById('img-right').style.transform)"
            )
            zoomed = _transform(page, "#img-left")
            assert zoomed == _transform(page, "#img-right")
            scale = float(re.search(r"scale\(([\d.]+)\)", zoomed).group(1))
            assert scale > 1.5
            # pan by dragging: the view moves and no answer is given
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6, steps=5)
            page.mouse.up()
            assert _transform(page, "#img-left") != zoomed
            assert StudyStore(home).answers("web") == []
            page.keyboard.press("0")
            assert _transform(page, "#img-left") == "translate(0px, 0px) scale(1)"
            # choose by clicking the image itself
            page.click(f'#pair .viewport[data-side="{better}"]')
        elif step == 1:
            # reload mid-study: the participant continues at the same pair
            page.reload()
            page.wait_for_function(READY, timeout=10_000)
            assert page.evaluate("document.body.dataset.item") == item
            assert page.text_content("#progress-text").strip() == "Pair 2 / 3"
            page.keyboard.press("ArrowLeft" if better == "left" else "ArrowRight")
        else:
            page.click(f"#choose-{better}")
        expected.append((item, left if better == "left" else right))
        _wait_next(page, item)
        # stored the moment it was given
        assert len(StudyStore(home).answers("web")) == len(expected)

    assert page.evaluate("document.body.dataset.state") == "done"
    assert page.is_visible("#done")
    assert page.text_content("#progress-text").strip() == "3 / 3 done"
    assert not console_errors and not failed, (console_errors, failed)

    rows = StudyStore(home).answers("web")
    assert [(r["item"], r["chosen"]) for r in rows] == expected
    assert all(r["participant"] == "alice" for r in rows)
    assert {r["side"] for r in rows} <= {"left", "right"}

    # a second participant at the same time, keyboard only, always "A"
    page2 = browser.new_page()
    page2.goto(srv.url + "?participant=bob", timeout=10_000)
    for _ in range(10):
        page2.wait_for_function(READY, timeout=10_000)
        if page2.evaluate("document.body.dataset.state") == "done":
            break
        item = page2.evaluate("document.body.dataset.item")
        page2.keyboard.press("ArrowLeft")
        _wait_next(page2, item)
    assert page2.is_visible("#done")
    rows = StudyStore(home).answers("web")
    assert len(rows) == 6 and sum(r["participant"] == "bob" for r in rows) == 3
    assert all(r["side"] == "left" for r in rows if r["participant"] == "bob")

    res = score_study(home, "web", n_bootstrap=100)
    # alice's answers order the methods; bob's left clicks only add noise
    alice_only = score_study(home, "web", n_bootstrap=0, exclude=["bob"])
    assert alice_only.score_of("sgz") > alice_only.score_of("lime") > alice_only.score_of("he")
    assert res.n_observers == 2 and res.n_trials == 6
