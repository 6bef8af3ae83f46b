#!/usr/bin/env bash
# Runs the Docker tests (pytest: tests/docker/test_docker_*.py, with a private engine of their
# own, real programs, cgroups and namespaces) and ends with one line "docker: N passed, M
# failed" (tests/lib/tally.sh reads it). Like the kernel tests these never skip: a run that
# cannot start, an engine that cannot start and an error are failures, with their reason.
#   bash tests/docker/run.sh [PYTEST ARGS...]      e.g. -k window
# shellcheck source-path=SCRIPTDIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/tally.sh
. "$here/../lib/tally.sh"

cannot_run() {
	echo "docker tests cannot run: $*" >&2
	echo "docker: 0 passed, 1 failed"
	exit 1
}
[ "$(id -u)" -eq 0 ] || cannot_run "they need root"
command -v pytest-3 >/dev/null || cannot_run "pytest-3 is not installed (sh scripts/install-deps.sh)"

log=$(mktemp /tmp/vgdocker-run.XXXXXX) || cannot_run "mktemp failed"
trap 'rm -f "$log"' EXIT
# From tests/, so tests/conftest.py (the session's own pin root, vg, the kernel lock) applies.
(cd "$here/.." && PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider "$@" docker/) 2>&1 |
	tee "$log"
rc=${PIPESTATUS[0]}
last=$(tail -n 1 "$log")
if [[ $last =~ [0-9]+\ (passed|failed|errors?)(,.*)?\ in\ [0-9.]+s ]]; then
	passed=$(_tally_count passed "$last")
	failed=$(($(_tally_count failed "$last") + $(_tally_count error "$last")))
fi
# pytest failed without a failed test (usage, collection, internal error): still a failure.
[ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "docker: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
