"""HiLLIE with people in the browser: scripted annotators label a stage's pairs by clicking in
headless Chromium, and the waiting training continues. Needs /usr/bin/chromium and Playwright's
Python package (skipped otherwise), like tests/test_study_browser.py."""

from __future__ import annotations

import json

import pytest
import torch
from browser_support import NEEDS_CHROMIUM, READY, launch

from llbench.api import TrainContext
from llbench.errors import WaitingForInput

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright's Python package (pip install playwright)"
)


def test_annotators_label_a_stage_in_the_browser(home, tmp_path):
    from test_hillie_loop import TINY, _Data, _images

    from llbench.pluginhost.host import get_host
    from llbench.study import StudyServer, StudyStore

    samples = _images(tmp_path / "data")
    wd = home / "train" / "fedcba9876543210fedc"
    ctx = TrainContext(
        dataset=_Data(samples), samples=samples, workdir=wd, seed=0,
        device=torch.device("cpu"), home=home,
    )  # fmt: skip
    method = get_host().method("hillie").build(TINY, torch.device("cpu"))
    with pytest.raises(WaitingForInput):
        method.fit(ctx)
    name = "hillie-fedcba987654-s1"
    srv = StudyServer(home, name, port=0).start()
    try:
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            for who in ("ann1", "ann2", "ann3"):
                page = browser.new_page()
                page.goto(srv.url + f"?participant={who}", timeout=10_000)
                for _ in range(10):  # bounded: 3 pairs
                    page.wait_for_function(READY, timeout=10_000)
                    if page.evaluate("document.body.dataset.state") == "done":
                        break
                    item = page.evaluate("document.body.dataset.item")
                    # this scripted annotator always prefers the newer stage's image
                    left = page.get_attribute("#img-left", "src").rsplit("/", 1)[1]
                    files = StudyStore(home).images(name)
                    newer = "left" if files[left].condition == "f1" else "right"
                    page.click(f"#choose-{newer}")
                    page.wait_for_function(
                        "prev => document.body.dataset.state === 'done' || "
                        "document.body.dataset.item !== prev",
                        arg=item,
                        timeout=10_000,
                    )
                assert page.is_visible("#done")
            browser.close()
    finally:
        srv.stop()
    method.fit(ctx)
    labels = json.loads((wd / "stage1" / "labels.json").read_text())
    assert len(labels) == 3
    assert all(x["winner"] == "b" and x["votes_b"] == 3 for x in labels)  # f1 chosen by all
