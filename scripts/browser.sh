#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Python's playwright (playwright's own browser
# download is not used). Install it when missing and we may; otherwise say what to do.
set -eu
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "lab: installing Debian's chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
  }
  exit 0
fi
echo "lab: the browser tests need Chromium at /usr/bin/chromium: sudo apt-get install chromium" >&2
exit 1
