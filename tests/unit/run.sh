#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the cmocka unit-test binaries given as arguments and adds up their
# test cases. The last line printed is always exactly "N passed, M failed"
# (N and M count test cases over all binaries). Exits 0 only if every test
# passed and no binary crashed, stopped early or was missing.
#
#   sh tests/unit/run.sh build/test_args build/test_policy ...

# cmocka's plain text format is the one parsed below.
CMOCKA_MESSAGE_OUTPUT=STDOUT
export CMOCKA_MESSAGE_OUTPUT

passed=0
failed=0
bad=0
out=$(mktemp "${TMPDIR:-/tmp}/vg-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT
trap 'rm -f "$out"; exit 130' INT
trap 'rm -f "$out"; exit 143' TERM

if [ $# -eq 0 ]; then
	echo "run.sh: no test binaries given" >&2
	bad=1
fi

for t in "$@"; do
	case $t in
	*/*) cmd=$t ;;
	*) cmd=./$t ;;
	esac
	if [ ! -f "$cmd" ] || [ ! -x "$cmd" ]; then
		echo "run.sh: $t: no such executable" >&2
		failed=$((failed + 1))
		bad=1
		continue
	fi

	"$cmd" >"$out" 2>&1
	rc=$?
	cat "$out"

	# p, f: the summary's "[  PASSED  ] K test(s)." and "[  FAILED  ] K test(s), ..."
	# (summed over groups; newer cmocka puts "GROUP: " before K);
	# s: summaries seen; run, ok, skip: per-test lines, for a binary that died.
	read -r p f s run ok skip <<EOF
$(awk '
	function count(   i) {
		for (i = 2; i <= NF; i++)
			if ($i ~ /^test\(s\)/ && $(i - 1) ~ /^[0-9]+$/)
				return $(i - 1) + 0
		return -1
	}
	/^\[  PASSED  \] / { n = count(); if (n >= 0) p += n; next }
	/^\[  FAILED  \] / { n = count(); if (n >= 0) f += n; next }
	/^\[  SKIPPED \] / { if (count() < 0) skip++; next }
	/^\[==========\] .*test\(s\) run\./ { s++; next }
	/^\[ RUN      \] / { run++; next }
	/^\[       OK \] / { ok++; next }
	END { print p + 0, f + 0, s + 0, run + 0, ok + 0, skip + 0 }
' "$out")
EOF

	if [ "$s" -gt 0 ] && [ "$rc" -lt 128 ]; then
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			# cmocka's exit status is its failure count: a failure it did not list.
			echo "run.sh: $t: exit status $rc but no failed test listed" >&2
			failed=$((failed + 1))
			bad=1
		elif [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then
			echo "run.sh: $t: $f failed test(s) but exit status 0" >&2
			bad=1
		fi
	else
		# Crashed (signal, abort) or stopped before its summary: every test
		# that started and did not pass or skip counts as failed, at least one.
		lost=$((run - ok - skip))
		[ "$lost" -lt 1 ] && lost=1
		if [ "$rc" -gt 128 ]; then
			echo "run.sh: $t: crashed (signal $((rc - 128)))" >&2
		else
			echo "run.sh: $t: stopped without a summary (exit status $rc)" >&2
		fi
		passed=$((passed + ok))
		failed=$((failed + lost))
		bad=1
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$bad" -eq 0 ]
