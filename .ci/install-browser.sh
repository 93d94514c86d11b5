#!/usr/bin/env bash
# Install what the browser tests (tests/test_study_browser.py, marker "browser") need:
# Debian's Chromium (driven through Playwright's Python package with
# executable_path=/usr/bin/chromium) and ChromeDriver for Selenium users.
# Idempotent: does nothing when both are already there. Never runs `playwright install`
# (its browser download is not available offline); see ../shared/ENVIRONMENT.md.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo unknown)"
else
    sudo=""
    if [ "$(id -u)" != "0" ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium chromium-driver
    echo "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
fi
# Playwright's Python package comes with the test extra (`make install`).
