#!/usr/bin/env bash
# Runs pytest from the project's venv. pytest exits 5 when it collected no test: for lab that
# means a broken test tree, never a pass, so it is reported as a failure with a clear message.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
"${VENV:-$here/.venv}/bin/pytest" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "lab: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi
exit "$rc"
