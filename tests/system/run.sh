#!/usr/bin/env bash
# Runs the system test (pytest: tests/system/test_systemd.py, docs/system-test.md): the .deb in
# a Debian 12 booted with systemd as PID 1 by systemd-nspawn, its guard judged by real packets.
# Ends with one line "system: N passed, M failed" (tests/lib/tally.sh reads it). Like the
# kernel tests it never skips: a run that cannot start, a machine that cannot boot and an error
# are failures, with their reason.
#   bash tests/system/run.sh [PYTEST ARGS...]      e.g. -k kill
# shellcheck source-path=SCRIPTDIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/tally.sh
. "$here/../lib/tally.sh"

cannot_run() {
	echo "system test cannot run: $*" >&2
	echo "system: 0 passed, 1 failed"
	exit 1
}
[ "$(id -u)" -eq 0 ] || cannot_run "it needs root"
command -v pytest-3 >/dev/null || cannot_run "pytest-3 is not installed (sh scripts/install-deps.sh)"
for t in debootstrap systemd-nspawn; do
	command -v "$t" >/dev/null || cannot_run "$t is not installed (apt-get install debootstrap systemd-container)"
done

start=$(date +%s)
pytest_suite system "$@"
echo "system test: $(($(date +%s) - start)) s in all"
echo "system: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
