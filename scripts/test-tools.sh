#!/usr/bin/env bash
# Debian tools some tests use: Chromium (driven by Python's playwright; playwright's own browser
# download is not used), docker-compose (validates docker-compose.yml without a Docker engine)
# and Prometheus (a real server scrapes `lab`; promtool checks the exposition and configs).
# Installs what is missing when we may; otherwise says what to do.
set -eu
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "lab: installing ${missing[*]} for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null
  }
  exit 0
fi
echo "lab: the tests need ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
exit 1
