#!/usr/bin/env bash
# make test: the unit tests (no root needed), the package, man pages and completion, the kernel tests, the real torrent clients and the
# Docker tests and the package under a booted systemd (root), one total.
set -u
cd "$(dirname "$0")/.."
. tests/lib/tally.sh
# The suites' own pin root and run directory (see tests/kernel/run.sh).
export VPNGUARD_PIN_ROOT=/sys/fs/bpf/vgtest-$$ VPNGUARD_RUN_DIR=/run/vgtest-$$
trap '[ -d "$VPNGUARD_PIN_ROOT" ] && build/vpnguard-bpf detach >/dev/null 2>&1; rm -rf "$VPNGUARD_RUN_DIR"' EXIT
tally make -s unit-test
tally make -s fuzz-smoke
tally bash tests/test_install.sh
tally env PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider tests/test_report_cli.py
tally env PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider tests/test_manpage.py tests/test_completion.py
tally env PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider tests/test_packaging.py
tally bash tests/kernel/run.sh
tally bash tests/clients/run.sh
tally bash tests/docker/run.sh
tally bash tests/system/run.sh
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
