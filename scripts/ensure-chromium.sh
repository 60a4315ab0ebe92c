#!/usr/bin/env bash
# The browser tests need Debian's Chromium at /usr/bin/chromium. Install it
# when missing and we are root (CI, fresh machines); otherwise say what to do.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
else
    echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
fi
