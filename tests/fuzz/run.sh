#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs each libFuzzer target for SECONDS, starting from its corpus:
#
#   sh tests/fuzz/run.sh SECONDS build/fuzz/fuzz_NAME...
#
# A target passes when it finds nothing (no crash, leak, sanitizer report,
# timeout or failed check). The committed corpus, tests/fuzz/corpus/NAME
# (regression cases included), is only read; inputs that reach new code go to
# build/fuzz/new/NAME, a crash to build/fuzz/crash-NAME-*, the output to
# build/fuzz/NAME.log. The last line is "N passed, M failed", one per target.
secs=$1
shift
passed=0
failed=0
for bin in "$@"; do
	name=${bin##*/fuzz_}
	out=$(dirname "$bin")
	corpus=tests/fuzz/corpus/$name
	log=$out/$name.log
	if [ ! -d "$corpus" ]; then
		echo "FAIL $name: no corpus $corpus"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$out/new/$name"
	# The words a target's parser knows, where it has a dictionary (tests/fuzz/NAME.dict).
	dict=
	[ -f "tests/fuzz/$name.dict" ] && dict=-dict=tests/fuzz/$name.dict
	if "$bin" ${dict:+"$dict"} -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/crash-$name-" "$out/new/$name" "$corpus" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "PASS $name: ${runs:-?} inputs in ${secs} s, corpus $(ls "$corpus" | wc -l) files"
		passed=$((passed + 1))
	else
		echo "FAIL $name (all of it in $log):"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|check failed|.*runtime error|artifact_prefix|Test unit written)' \
			"$log" | head -n 20
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
