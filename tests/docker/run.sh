#!/usr/bin/env bash
# Runs every Docker test file (a private engine of their own, real programs, cgroups and
# namespaces) and adds up their closing "N passed, M failed" lines.  A file that cannot
# run counts as failed: like the kernel tests, these never skip; an engine that cannot
# start is a failure with its reason.
# shellcheck source-path=SCRIPTDIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/tally.sh
. "$here/../lib/tally.sh"

[ "$(id -u)" -eq 0 ] || { echo "docker tests cannot run: they need root" >&2; failed=$((failed + 1)); }
if [ "$failed" -eq 0 ]; then
	for t in "$here"/test_*.sh; do
		echo "=== ${t##*/}"
		tally bash "$t"
	done
fi
echo "docker: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
