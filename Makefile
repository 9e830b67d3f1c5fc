# Two commands for a fresh Debian 12 machine (as root): `make run` (the demo) and `make test`.
# Both install what they need first, idempotently.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-installed

.PHONY: run test deps debian-packages venv lint bench-store bench-api bench-southbound bench-portup bench-batch bench-churn bench-restart bench-dhcp bench-router bench-scale

run: deps
	$(VENV)/bin/vlcp demo

test: deps
	$(VENV)/bin/ruff check vlcp tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

deps: debian-packages venv

debian-packages:
	@./scripts/install-debian-packages.sh

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check vlcp tests bench examples
	$(VENV)/bin/lint-imports

bench-store: deps
	$(PY) bench/store.py

bench-api: deps
	$(PY) bench/api.py

bench-southbound: deps
	$(PY) bench/southbound.py

bench-portup: deps
	$(PY) bench/portup.py

bench-batch: deps
	$(PY) bench/batch.py

bench-churn: deps
	$(PY) bench/churn.py

bench-restart: deps
	$(PY) bench/restart.py

bench-dhcp: deps
	$(PY) bench/dhcp.py

bench-router: deps
	$(PY) bench/router.py

bench-scale: deps
	$(PY) bench/scale.py
