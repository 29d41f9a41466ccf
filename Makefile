.PHONY: demo test setup lint
demo:   ## set up and run the demo (CSV roster -> bundled Nebuly stand-in)
	bash scripts/demo.sh
test:   ## set up and run every check and the test suite
	bash scripts/test.sh
setup:
	bash scripts/setup.sh full
lint:
	.venv/bin/ruff check syncd tests bench && .venv/bin/mypy syncd && .venv/bin/lint-imports
