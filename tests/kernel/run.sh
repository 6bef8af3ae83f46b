#!/usr/bin/env bash
# Runs every kernel test file (real programs, cgroups, namespaces, tunnels) and adds up
# their closing "N passed, M failed" lines. A file that cannot run counts as failed:
# kernel tests never skip.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tally.sh"
# One pin root and run directory of their own for every file (a file run alone makes its own):
# the tests run beside a vpnguard that guards this machine.
export VPNGUARD_PIN_ROOT=${VPNGUARD_PIN_ROOT:-/sys/fs/bpf/vgtest-$$}
export VPNGUARD_RUN_DIR=${VPNGUARD_RUN_DIR:-/run/vgtest-$$}
cleanup_paths() {
	[ -d "$VPNGUARD_PIN_ROOT" ] && "$here/../../build/vpnguard-bpf" detach >/dev/null 2>&1
	rm -rf "$VPNGUARD_RUN_DIR"
}
trap cleanup_paths EXIT

fail_setup() {
	echo "kernel tests cannot run: $*" >&2
	failed=$((failed + 1))
}

[ "$(id -u)" -eq 0 ] || fail_setup "they need root"
[ -r /sys/kernel/btf/vmlinux ] || fail_setup "no kernel BTF at /sys/kernel/btf/vmlinux"
for tool in wireguard-go wg nft bpftool ip setpriv python3; do
	command -v "$tool" >/dev/null || fail_setup "$tool is not installed (sh scripts/install-deps.sh)"
done
grep -qw cgroup2 /proc/self/mounts || fail_setup "no cgroup v2 mount"

command -v pytest-3 >/dev/null || fail_setup "pytest-3 is not installed (sh scripts/install-deps.sh)"

if [ "$failed" -eq 0 ]; then
	for t in "$here"/test_*.sh; do
		[ -e "$t" ] || continue # no bash suite left
		echo "=== ${t##*/}"
		tally bash "$t"
	done
	echo "=== pytest: tests/kernel/test_*.py"
	tally env PYTHONDONTWRITEBYTECODE=1 pytest-3 -q -rfE -p no:cacheprovider "$here"
fi
echo "kernel: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
