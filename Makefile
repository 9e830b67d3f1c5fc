# Two commands for a fresh Debian 12 machine (as root): `make run` (the demo) and `make test`.
# Both install what they need first, idempotently.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-installed

.PHONY: run test deps debian-packages venv neutron-venv lint bench-store bench-api bench-southbound bench-portup bench-batch bench-churn bench-restart bench-dhcp bench-router bench-scale bench-scale-servers

run: deps
	$(VENV)/bin/vlcp demo

test: deps neutron-venv
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

# Neutron's own venv for tests/e2e/neutron (its first test would build it too; here the
# minute it takes is not counted in that test's timeout). A no-op once built.
neutron-venv:
	@./scripts/neutron-venv.sh

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

# 100 simulated servers (real agents, lightweight switches) against ZooKeeper, then etcd;
# more flags after SCALE_ARGS, e.g. make bench-scale-servers SCALE_ARGS="--servers 150 --changes 50"
SCALE_ARGS ?=
bench-scale-servers: deps
	$(PY) bench/scale.py --servers 100 $(SCALE_ARGS)
