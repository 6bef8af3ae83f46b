#!/bin/sh
# The real-client tests (tests/clients/) with Debian's pytest; root. Installs nothing
# (scripts/install-deps.sh does). Extra arguments go to pytest, e.g.
#   tests/clients/run.sh -k 'transmission and split'
#   tests/clients/run.sh tests/clients/test_topology.py
#   tests/clients/run.sh -m reference        # the no-vpnguard reference runs
# Exit status: pytest's (non-zero when anything failed).
cd "$(dirname "$0")/../.." || exit 2
where=tests/clients
for a in "$@"; do
	case $a in tests/*) where= ;; esac
done
PYTHONDONTWRITEBYTECODE=1 exec pytest-3 -v -rA -p no:cacheprovider $where "$@"
