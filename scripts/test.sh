#!/usr/bin/env bash
# Set up (if needed) and run every check: lint, types, layering, tests, deploy files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh full
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";          ruff check syncd tests bench
echo "== mypy";          mypy syncd
echo "== import-linter"; lint-imports
if [ -f scripts/check-deploy.sh ]; then
  echo "== deploy files"; PYTHON=.venv/bin/python bash scripts/check-deploy.sh
fi
echo "== pytest"
pytest -q "$@"
