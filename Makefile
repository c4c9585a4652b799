.PHONY: install test test-fast docs demo lint bench

install:
	python3 -m venv .venv
	.venv/bin/pip install -c .ci/constraints.txt torch==2.13.0
	.venv/bin/pip install -c .ci/constraints.txt -e ".[dev]"

test:
	.venv/bin/python -m pytest

# The quick loop: everything but the tests marked slow (MiniLM, torchrun, tutorials, the site build).
test-fast:
	.venv/bin/python -m pytest -m "not slow"

docs:
	.venv/bin/mkdocs build --strict

demo:
	.venv/bin/st-gloss demo

lint:
	.venv/bin/ruff check st_gloss evaluation tests

bench:
	.venv/bin/python -m evaluation.benchmarks.loss_timing --output evaluation/results/loss_timing.md
