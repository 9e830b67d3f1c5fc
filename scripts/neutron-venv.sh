#!/usr/bin/env bash
# Builds the Neutron API server's own venv for the Neutron driver's end-to-end tests
# (tests/e2e/neutron), apart from vlcp's .venv: neutron pins its own versions of libraries
# vlcp uses too (os-ken, SQLAlchemy...), and it is about 370 MB that nothing else needs.
# OpenStack's `openstack` CLI (python-openstackclient) goes in too, as the tests drive
# Neutron with it as a user does: it shares Neutron's libraries (openstacksdk, osc-lib,
# keystoneauth1) and adds two packages, 23 MB and about 5 seconds to the build.
# vlcp goes in editable and without its dependencies: the driver needs only the standard
# library and vlcp.client, and its entry point (neutron.ml2.mechanism_drivers) must be
# registered in this venv for ML2 to find it.
# Idempotent, with two stamps: one holds this script's hash (the pins) and the repository
# path, and a change rebuilds the venv (about a minute); the other holds pyproject.toml's
# hash (vlcp's entry points), and a change reinstalls vlcp alone (seconds). Unchanged, a
# re-run is a no-op (well under a second). A lock keeps two test runs from building at once.
# Usage: scripts/neutron-venv.sh [VENV] (default .neutron-venv)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$REPO/.neutron-venv}
NEUTRON=neutron==29.0.0    # what ../shared/lab/10_neutron.sh got from PyPI
GUNICORN=gunicorn==27.0.1  # serves neutron.wsgi.api:application (no neutron-server script)
OPENSTACK=python-openstackclient==10.5.0  # `openstack`, the CLI the tests drive Neutron with
BUILT="$VENV/.neutron-installed"
LINKED="$VENV/.vlcp-installed"
WANT_BUILT="$(sha256sum "$0" | cut -d' ' -f1) $REPO"
WANT_LINKED=$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)
quiet_pip() { "$VENV/bin/pip" install -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -f "$BUILT" ] || [ "$(cat "$BUILT")" != "$WANT_BUILT" ]; then
  echo "building the Neutron venv in $VENV (about a minute)" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  quiet_pip "$NEUTRON" "$GUNICORN" "$OPENSTACK"
  echo "$WANT_BUILT" > "$BUILT"
fi
[ -f "$LINKED" ] && [ "$(cat "$LINKED")" = "$WANT_LINKED" ] && exit 0
quiet_pip --no-deps -e "$REPO"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import entry_points

names = {e.name for e in entry_points(group="neutron.ml2.mechanism_drivers")}
assert "vlcp" in names, f"vlcp's mechanism driver is not registered: {sorted(names)}"
PY
echo "$WANT_LINKED" > "$LINKED"
