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
