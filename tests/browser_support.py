"""What the browser tests share: the headless Chromium they drive through Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Predicates are functions: a bare expression would be eval'ed in the page, which its CSP forbids.
READY = "() => ['ready', 'done'].includes(document.body.dataset.state)"
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium: run .ci/install-browser.sh (apt-get install chromium)",
)


def launch(playwright):
    """Headless Chromium from ``playwright`` (a ``sync_playwright()`` context)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=30_000)
