# shellcheck shell=bash
# Assertions of the kernel test files: each prints one "ok"/"FAIL" line and counts it;
# the file ends with "$pass passed, $fail failed".
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; }
note() { echo "#      $*"; }

expect_eq() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi
}
expect_ge() { # NAME GOT MIN
	if [ "$2" -ge "$3" ] 2>/dev/null; then ok "$1 ($2)"; else nok "$1 (got '$2', want >= $3)"; fi
}
expect_gt() { # NAME GOT THAN
	if [ "$2" -gt "$3" ] 2>/dev/null; then ok "$1 ($2 > $3)"; else nok "$1 (got '$2', want > $3)"; fi
}
expect_match() { # NAME STRING ERE
	if [[ $2 =~ $3 ]]; then ok "$1"; else nok "$1 (got '$2', want /$3/)"; fi
}
expect_true() { # NAME CMD...
	local n=$1
	shift
	if "$@"; then ok "$n"; else nok "$n"; fi
}

# Kernel tests need root; not having it is a failure, never a skip.
require_root() {
	[ "$(id -u)" = 0 ] && return 0
	nok "must run as root"
	exit 1
}

# The suites' own pin root and run directory (vpnguard-bpf reads them from the environment):
# they run beside a vpnguard that guards this machine and never touch its pins or agent.
# tests/kernel/run.sh sets them once for every file; a file run alone makes its own.
export VPNGUARD_PIN_ROOT=${VPNGUARD_PIN_ROOT:-/sys/fs/bpf/vgtest-$$}
export VPNGUARD_RUN_DIR=${VPNGUARD_RUN_DIR:-/run/vgtest-$$}
PIN_ROOT=$VPNGUARD_PIN_ROOT
AGENT_PIDFILE=$VPNGUARD_RUN_DIR/agent.pid

# Kernel test files load the machine: one at a time. Sets lock_wait (s).
take_kernel_test_lock() {
	local t0=$SECONDS
	exec 9>/run/vpnguard-kernel-tests.lock
	if ! flock -w 900 9; then
		nok "could not take /run/vpnguard-kernel-tests.lock within 900 s"
		exit 1
	fi
	lock_wait=$((SECONDS - t0))
}

# Files that run agents: no other agent may be running in the suites' run directory (one agent
# per pin root), then the topology (tests/lib/topology.sh, sourced by the caller).
start_agent_world() {
	if [ -e "$AGENT_PIDFILE" ] && _topo_pid_alive "$(head -n1 "$AGENT_PIDFILE" 2>/dev/null)"; then
		nok "another vpnguard agent runs ($AGENT_PIDFILE): the agent cases cannot run"
		exit 1
	fi
	echo "# topology"
	if ! topo_up; then
		nok "topo_up"
		exit 1
	fi
	ok "topo_up (suffix $TOPO_SUFFIX)"
}

# The closing line, and the file's status: every check passed and the file reached its end
# (it sets finished=1 there).
result_line() {
	# The run directory holds the attach lock file once an attach ran; the pin root is gone
	# once every guard is detached.
	rm -f "$VPNGUARD_RUN_DIR/lock"
	rmdir "$VPNGUARD_RUN_DIR" 2>/dev/null
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ] && [ "${finished:-0}" = 1 ]
}

# Every kernel test file ends through this: whatever stops it still prints a result line.
trap 'on_exit; exit $?' EXIT
trap 'nok "interrupted"; exit 130' INT TERM
