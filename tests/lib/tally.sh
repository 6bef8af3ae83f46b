# shellcheck shell=bash
# Adds up closing lines: `tally CMD...` runs CMD, shows its output, and adds its counts to
# $passed and $failed. The last line is "N passed, M failed" (the bash suites, cmocka) or
# pytest's summary ("3 failed, 213 passed, 1 error in 9.1s": errors count as failures);
# a run with neither counts as one failure.
passed=${passed:-0}
failed=${failed:-0}

_tally_count() { # WORD LINE: the number before WORD in LINE, 0 if none
	local re="([0-9]+) $1"
	if [[ $2 =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

tally() {
	local last p f e out
	# The output goes to stderr by the descriptor itself: `tee /dev/stderr` would open the file
	# again, and when stderr is a file (a CI log) truncate what the suites before wrote there.
	out=$(mktemp /tmp/vgtally.XXXXXX) || { failed=$((failed + 1)); return; }
	"$@" 2>&1 | tee "$out" >&2
	last=$(tail -n 1 "$out")
	rm -f "$out"
	if [[ $last =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	elif [[ $last =~ [0-9]+\ (passed|failed|errors?)(,.*)?\ in\ [0-9.]+s ]]; then
		p=$(_tally_count passed "$last")
		f=$(_tally_count failed "$last")
		e=$(_tally_count error "$last")
		passed=$((passed + p))
		failed=$((failed + f + e))
	else
		echo "'$*' ended without a result line" >&2
		failed=$((failed + 1))
	fi
}

# pytest_suite DIR [PYTEST ARGS...]: pytest-3 on tests/DIR, run from tests/ (so tests/conftest.py
# applies: the session's own pin root, vg, the kernel lock), its output shown; $passed and
# $failed are set from its summary. pytest failing without a failed test (usage, collection, an
# internal error) counts as one failure: these suites never skip.
pytest_suite() {
	local dir=$1 log rc last
	shift
	passed=0 failed=0
	log=$(mktemp /tmp/vgsuite.XXXXXX) || { failed=1; return; }
	(cd "$(dirname "${BASH_SOURCE[0]}")/.." &&
		PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider "$@" "$dir/") 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	last=$(tail -n 1 "$log")
	rm -f "$log"
	if [[ $last =~ [0-9]+\ (passed|failed|errors?)(,.*)?\ in\ [0-9.]+s ]]; then
		passed=$(_tally_count passed "$last")
		failed=$(($(_tally_count failed "$last") + $(_tally_count error "$last")))
	fi
	[ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
}
