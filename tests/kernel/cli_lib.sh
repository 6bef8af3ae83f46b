# shellcheck shell=bash
# shellcheck disable=SC2034 # globals (VG_RC, PROBE_*, FAR...) are read by test_cli.sh
# tests/kernel/cli_lib.sh - helpers of tests/kernel/test_cli.sh (sourced after
# tests/lib/topology.sh): assertions, vpnguard-bpf and bpftool readers, the
# far-side counters, probes run in a guarded cgroup.  Needs root, bpftool and
# python3 (for JSON).

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

VG=${VG:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/vpnguard-bpf}
PY=$(command -v python3 2>/dev/null || echo /usr/bin/python3)
py() { "$PY" -c "$@"; }

# vpnguard-bpf with a time limit.  vg_cap OUT ERR ARGS...: exit status in VG_RC.
vg() { timeout 30 "$VG" "$@"; }
VG_RC=0
vg_cap() {
	local out=$1 err=$2
	shift 2
	timeout 30 "$VG" "$@" >"$out" 2>"$err"
	VG_RC=$?
}

# ---------------------------------------------------------------------------
# status --json

status_json() { timeout 10 "$VG" status --json 2>/dev/null; }

# gq ID PYEXPR: evaluates PYEXPR with g = the guard whose cgroup_id is ID (None
# if absent) and d = the whole status; strings print bare, the rest as JSON.
gq() {
	status_json | py '
import json, sys
d = json.load(sys.stdin)
gid = int(sys.argv[1])
g = next((x for x in d["guards"] if x["cgroup_id"] == gid), None)
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2" 2>/dev/null
}

# denied_into ARRAY ID: ARRAY[reason]=count for guard ID (empty if no such guard).
denied_into() {
	local -n _arr=$1
	local kv
	_arr=()
	for kv in $(status_json | py '
import json, sys
d = json.load(sys.stdin)
g = [x for x in d["guards"] if x["cgroup_id"] == int(sys.argv[1])]
print(" ".join("%s=%s" % kv for kv in g[0]["denied"].items()) if g else "")' "$2" 2>/dev/null); do
		_arr[${kv%%=*}]=${kv#*=}
	done
}

# expect_denied NAME ARRAY_BEFORE ARRAY_AFTER REASON WANT: the reason counter
# moved by exactly WANT and no other reason moved (events_* aside).
expect_denied() {
	local name=$1 reason=$4 want=$5 k d other=""
	local -n _b=$2 _a=$3
	if [ "${#_a[@]}" = 0 ]; then
		nok "$name: guard missing from status --json"
		return
	fi
	d=$((${_a[$reason]:-0} - ${_b[$reason]:-0}))
	for k in "${!_a[@]}"; do
		case $k in "$reason" | events_suppressed | events_lost) continue ;; esac
		[ "$((${_a[$k]:-0} - ${_b[$k]:-0}))" = 0 ] || other+=" $k+$((${_a[$k]:-0} - ${_b[$k]:-0}))"
	done
	if [ "$d" = "$want" ] && [ -z "$other" ]; then
		ok "$name: status denied.$reason +$d, other reasons +0"
	else
		nok "$name: status denied.$reason +$d (want +$want)${other:+, other reasons moved:$other}"
	fi
}

# ---------------------------------------------------------------------------
# the far side (nft counters in INET), read in one call

declare -A FAR
FAR_KEYS="tunnel leak leak6 lan vpnsrc stray"
far_read() {
	local a b name=""
	FAR=()
	while read -r a b _; do
		case $a in
		counter) name=$b ;;
		packets) FAR[$name]=$b ;;
		esac
	done < <(ip netns exec "$TOPO_INET" nft list counters table inet vgtopo 2>/dev/null)
	FAR[leak]=${FAR[leak4]:--1}
	FAR[stray]=${FAR[stray4]:--1}
}
far_line() { far_read; local k s=""; for k in $FAR_KEYS; do s+="$k=${FAR[$k]} "; done; echo "${s% }"; }

# _far_parse SPEC: fills _fop/_fval; every counter of FAR_KEYS not named in SPEC must be 0.
declare -A _fop _fval
_far_parse() {
	local tok k
	_fop=() _fval=()
	for k in $FAR_KEYS; do _fop[$k]='='; _fval[$k]=0; done
	for tok in $1; do
		if [[ $tok =~ ^([a-z0-9]+)(\>=|=)([0-9]+)$ ]]; then
			_fop[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
			_fval[${BASH_REMATCH[1]}]=${BASH_REMATCH[3]}
		fi
	done
}
_far_mins_reached() {
	local k
	far_read
	for k in "${!_fop[@]}"; do
		[ "${FAR[$k]:--1}" -ge "${_fval[$k]}" ] || return 1
	done
}
# far_check SPEC: 0 if the counters (since the last leak_reset) match; the
# wanted minimums are waited for (3 s), then a settle for stragglers.
far_check() {
	local k bad=""
	_far_parse "$1"
	_topo_wait_until 3 _far_mins_reached
	topo_settle 0.25
	far_read
	for k in "${!_fop[@]}"; do
		case ${_fop[$k]} in
		'=') [ "${FAR[$k]:--1}" -eq "${_fval[$k]}" ] || bad+=" $k=${FAR[$k]:-?}(want ${_fval[$k]})" ;;
		'>=') [ "${FAR[$k]:--1}" -ge "${_fval[$k]}" ] || bad+=" $k=${FAR[$k]:-?}(want >=${_fval[$k]})" ;;
		esac
	done
	FAR_BAD=$bad
	[ -z "$bad" ]
}
expect_far() { # NAME SPEC
	if far_check "$2"; then ok "$1: far side $(far_line)"; else nok "$1: far side:$FAR_BAD"; fi
}

# ---------------------------------------------------------------------------
# probes in a cgroup and netns HOME

# probe USER CG ARGS...: vgprobe's result line (its stderr is dropped).
probe() {
	local u=$1 cg=$2
	shift 2
	if [ "$u" = root ]; then
		run_in "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" "$@" 2>/dev/null
	else
		run_in_as "$u" "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" "$@" 2>/dev/null
	fi
}

# probe_pid USER CG OUT ARGS...: the same with a known PID (PROBE_PID), result
# line in OUT, exit status in PROBE_RC; returns once it has ended.
PROBE_PID=
PROBE_RC=
probe_pid() {
	local u=$1 cg=$2 out=$3
	shift 3
	if [ "$u" = root ]; then
		topo_spawn "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" "$@" >"$out" 2>/dev/null
	else
		topo_spawn_as "$u" "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" "$@" >"$out" 2>/dev/null
	fi
	PROBE_PID=$TOPO_LAST_PID
	_topo_wait_until 15 _topo_not _topo_pid_alive "$PROBE_PID"
	topo_stop "$PROBE_PID"
	PROBE_RC=$?
}

# ---------------------------------------------------------------------------
# bpftool

cg_id() { stat -L -c %i "$1"; }
cg_rel() { echo "${1#"$TOPO_CG2"}"; }

# cg_progs CG: "attach_type name" per program attached to CG, sorted.
cg_progs() {
	bpftool -j cgroup show "$1" 2>/dev/null | py '
import json, sys
t = sys.stdin.read().strip()
for p in sorted(json.loads(t) if t else [], key=lambda p: p.get("attach_type", "")):
    print(p.get("attach_type"), p.get("name"))'
}
CG_PROGS_WANT='cgroup_inet4_connect vg_connect4
cgroup_inet6_connect vg_connect6
cgroup_inet_egress vg_egress
cgroup_inet_sock_create vg_sock_create
cgroup_setsockopt vg_setsockopt
cgroup_udp4_sendmsg vg_sendmsg4
cgroup_udp6_sendmsg vg_sendmsg6'
# Exactly one vpnguard program per hook, nothing else.
expect_cg_guarded() { # NAME CG
	local got
	got=$(cg_progs "$2")
	if [ "$got" = "$CG_PROGS_WANT" ]; then
		ok "$1: bpftool cgroup show: one vg_ program per hook (7)"
	else
		nok "$1: bpftool cgroup show: $(echo "$got" | tr '\n' ',') (want one vg_ program on each of 7 hooks)"
	fi
}
expect_cg_unguarded() { # NAME CG
	local got
	got=$(cg_progs "$2")
	if [ -z "$got" ]; then ok "$1: bpftool cgroup show: no programs"; else nok "$1: bpftool cgroup show: $(echo "$got" | tr '\n' ',')"; fi
}

# tc_ifindexes ID: the interfaces that hold guard ID's tc program, as status --json has them
# from the kernel (Debian's bpftool does not show tcx).
tc_ifindexes() { gq "$1" '" ".join(str(i) for i in g["tc_ifindexes"])'; }
# tc_prog_id ID: the id of guard ID's tc program (its pin); prog_alive ID: is it still loaded?
tc_prog_id() { bpftool prog show pinned "$PIN_ROOT/$1/tc_egress" 2>/dev/null | awk -F: 'NR == 1 {print $1}'; }
prog_alive() { [ -n "$1" ] && bpftool prog show id "$1" >/dev/null 2>&1; }

# vg_links: "type prog_name link_id" for every BPF link whose program is vg_*.
vg_links() {
	py '
import json, subprocess
def j(*a):
    out = subprocess.run(["bpftool", "-j"] + list(a), capture_output=True, text=True).stdout.strip()
    return json.loads(out) if out else []
names = {p["id"]: p.get("name", "") for p in j("prog", "show")}
for l in j("link", "show"):
    n = names.get(l.get("prog_id"), "")
    if n.startswith("vg_"):
        print(l.get("type"), n, l.get("id"))'
}

# map_refs MAP ID: entries of a pinned map whose key is (or names as cgroup_id) ID.
map_refs() {
	bpftool -j map dump pinned "$PIN_ROOT/$1" 2>/dev/null | py '
import json, sys
t = sys.stdin.read().strip()
n = 0
for e in (json.loads(t) if t else []):
    k = e.get("formatted", {}).get("key")
    if k == int(sys.argv[1]) or (isinstance(k, dict) and k.get("cgroup_id") == int(sys.argv[1])):
        n += 1
print(n)' "$2"
}
map_len() {
	bpftool -j map dump pinned "$PIN_ROOT/$1" 2>/dev/null | py '
import json, sys
t = sys.stdin.read().strip()
print(len(json.loads(t)) if t else -1)'
}

# The state a failed command must leave alone: pins, the policy/state/tunnel/guard
# maps, the programs on the given cgroups, the agent lock.
state_snapshot() { # CG...
	local m cg
	find "$PIN_ROOT" 2>&1 | sort
	# One line per map entry (key, then the value with bpftool's field names),
	# so a diff names the entry that changed.
	for m in vg_policy vg_state vg_tunnels vg_guards; do
		bpftool -j map dump pinned "$PIN_ROOT/$m" 2>&1 | py '
import json, sys
t = sys.stdin.read()
try:
    d = json.loads(t)
except ValueError:
    print(sys.argv[1], "unreadable:", t.strip()); sys.exit()
def zero(v):
    return v in (0, "", None) or (isinstance(v, (list, dict)) and all(zero(x) for x in (v.values() if isinstance(v, dict) else v)))
def trim(v):  # unused array slots (trailing zeros) only hide the difference
    if isinstance(v, dict):
        return {k: trim(x) for k, x in v.items()}
    if isinstance(v, list):
        v = [trim(x) for x in v]
        while len(v) > 1 and zero(v[-1]) and not all(isinstance(x, int) for x in v):
            v.pop()
    return v
for e in d:
    f = e.get("formatted", e)
    print(sys.argv[1], json.dumps(f.get("key"), sort_keys=True), json.dumps(trim(f.get("value")), sort_keys=True, separators=(",", ":")))' "$m"
	done
	for cg in "$@"; do
		echo "== cgroup $cg"
		bpftool cgroup show "$cg" 2>&1
	done
	echo "== agent lock"
	cat $AGENT_PIDFILE 2>&1
}

# Lines of a JSON-lines file/stream that are not valid JSON objects: count.
json_lines_bad() {
	py '
import json, sys
bad = 0
for l in sys.stdin:
    if not l.strip():
        continue
    try:
        if not isinstance(json.loads(l), dict):
            bad += 1
    except ValueError:
        bad += 1
print(bad)'
}
