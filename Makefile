# Convenience targets; the scripts work without make.
.PHONY: serve test proof lint format

serve:
	bash scripts/serve.sh

test:
	bash scripts/test.sh

proof:
	bash scripts/proof.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .
