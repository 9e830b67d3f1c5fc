#!/usr/bin/env bash
# Builds the Neutron API server's own venv for the Neutron driver's end-to-end tests
# (tests/e2e/neutron), apart from vlcp's .venv: neutron pins its own versions of libraries
# vlcp uses too (os-ken, SQLAlchemy...), and it is about 350 MB that nothing else needs.
# vlcp goes in editable and without its dependencies: the driver needs only the standard
# library and vlcp.client, and its entry point (neutron.ml2.mechanism_drivers) must be
# registered in this venv for ML2 to find it.
# Idempotent: a stamp holding this script's hash and the repository path makes a re-run a
# no-op (well under a second); a changed pin, script or checkout rebuilds. A lock keeps two
# test runs from building at once. Usage: scripts/neutron-venv.sh [VENV] (default .neutron-venv)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$REPO/.neutron-venv}
NEUTRON=neutron==29.0.0    # what ../shared/lab/10_neutron.sh got from PyPI
GUNICORN=gunicorn==27.0.1  # serves neutron.wsgi.api:application (no neutron-server script)
STAMP="$VENV/.vlcp-installed"
WANT="$(sha256sum "$0" | cut -d' ' -f1) $REPO"
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && exit 0
echo "building the Neutron venv in $VENV (about a minute)" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "$NEUTRON" "$GUNICORN" 2> >(grep -v "^WARNING: Location" >&2)
"$VENV/bin/pip" install -q --no-deps -e "$REPO" 2> >(grep -v "^WARNING: Location" >&2)
"$VENV/bin/python" - <<'PY'
from importlib.metadata import entry_points

names = {e.name for e in entry_points(group="neutron.ml2.mechanism_drivers")}
assert "vlcp" in names, f"vlcp's mechanism driver is not registered: {sorted(names)}"
PY
echo "$WANT" > "$STAMP"
