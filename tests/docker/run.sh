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

pytest_suite docker "$@"
echo "docker: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
