#!/bin/sh
# The real-client tests (tests/clients/test_clients.py) with Debian's pytest; root.
# Installs nothing (scripts/install-deps.sh does). Extra arguments go to pytest,
# e.g. tests/clients/run.sh -k 'transmission and split'. Exit status: pytest's.
cd "$(dirname "$0")/../.." || exit 2
PYTHONDONTWRITEBYTECODE=1 exec pytest-3 -v -rA -p no:cacheprovider tests/clients "$@"
