#!/usr/bin/env bash
# Set up a development environment on a fresh Debian/Ubuntu machine:
#   system packages for the LDAP tests and the C LDAP backend, then a venv.
# Usage: scripts/setup.sh [minimal]   (minimal: only what the demo needs)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
PYTHON="${PYTHON:-python3}"

if [ "$mode" = full ]; then
  need=()
  # samba + ldb-tools (python3-samba comes with samba): the AD tests run a Samba AD DC.
  # strace: the one-write-per-log-event test.
  for pkg in slapd ldap-utils libldap2-dev libsasl2-dev time samba ldb-tools python3-samba strace; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# The locked versions (requirements/, refreshed with scripts/lock.sh), checked against
# their hashes; then syncd itself, editable and without resolving anything more.
if [ "$mode" = full ]; then
  lock=requirements/dev.txt
else
  lock=requirements/core.txt
fi
# pip's output goes to a log, shown only when an install fails.
pip_log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --require-hashes -r requirements/build.txt &&
       .venv/bin/python -m pip install -q --require-hashes -r "$lock" &&
       .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .; } >"$pip_log" 2>&1
then
  cat "$pip_log"; rm -f "$pip_log"
  echo "setup: pip install failed" >&2; exit 1
fi
rm -f "$pip_log"
.venv/bin/python -c "import syncd" && echo "setup: ready (.venv, locked by $lock)"
