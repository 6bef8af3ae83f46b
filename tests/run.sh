#!/usr/bin/env bash
# make test: the unit tests (no root needed) and the kernel tests (root), one total.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
for suite in "make -s unit-test" "bash tests/kernel/run.sh"; do
	last=$($suite 2>&1 | tee /dev/stderr | tail -n 1)
	if [[ $last =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		echo "'$suite' ended without a result line" >&2
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
