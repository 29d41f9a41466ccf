#!/usr/bin/env bash
# Set up (if needed) and run every check: lint, types, layering, tests, deploy files,
# and the image smoke test where a container tool is installed.
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
# Builds and runs the slim image when buildah + podman or docker are installed; otherwise
# it prints "image-smoke: SKIPPED: ..." and exits 0.
echo "== image smoke"
PYTHON=.venv/bin/python bash scripts/image-smoke.sh
