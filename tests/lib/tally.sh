# shellcheck shell=bash
# Adds up "N passed, M failed" closing lines: `tally CMD...` runs CMD, shows its output,
# and adds its counts to $passed and $failed; a run with no such line counts as one failure.
passed=${passed:-0}
failed=${failed:-0}

tally() {
	local last
	last=$("$@" 2>&1 | tee /dev/stderr | tail -n 1)
	if [[ $last =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
	else
		echo "'$*' ended without a result line" >&2
		failed=$((failed + 1))
	fi
}
