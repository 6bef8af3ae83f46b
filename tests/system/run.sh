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

log=$(mktemp /tmp/vgsystem-run.XXXXXX) || cannot_run "mktemp failed"
trap 'rm -f "$log"' EXIT
start=$(date +%s)
# From tests/, so tests/conftest.py (the session's own pin root, vg, the kernel lock) applies.
(cd "$here/.." && PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider "$@" system/) 2>&1 |
	tee "$log"
rc=${PIPESTATUS[0]}
last=$(tail -n 1 "$log")
if [[ $last =~ [0-9]+\ (passed|failed|errors?)(,.*)?\ in\ [0-9.]+s ]]; then
	passed=$(_tally_count passed "$last")
	failed=$(($(_tally_count failed "$last") + $(_tally_count error "$last")))
fi
# pytest failed without a failed test (usage, collection, internal error): still a failure.
[ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "system test: $(($(date +%s) - start)) s in all"
echo "system: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
