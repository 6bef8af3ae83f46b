#!/usr/bin/env bash
# make test: the unit tests (no root needed) and the kernel tests (root), one total.
set -u
cd "$(dirname "$0")/.."
. tests/lib/tally.sh
tally make -s unit-test
tally bash tests/test_install.sh
tally bash tests/kernel/run.sh
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
