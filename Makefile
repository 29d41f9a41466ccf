.PHONY: demo test setup lint lock image-smoke
demo:   ## set up and run the demo (CSV roster -> bundled Nebuly stand-in)
	bash scripts/demo.sh
test:   ## set up and run every check and the test suite
	bash scripts/test.sh
setup:
	bash scripts/setup.sh full
lint:
	.venv/bin/ruff check syncd tests bench && .venv/bin/mypy syncd && .venv/bin/lint-imports
lock:   ## refresh requirements/*.txt (pinned, hashed) from pyproject.toml
	bash scripts/lock.sh
image-smoke:  ## build the image (VARIANT=slim|full) and smoke-test it with podman or docker
	bash scripts/image-smoke.sh
