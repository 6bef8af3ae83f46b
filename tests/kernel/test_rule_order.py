"""The rules header is the truth: every ordering claim of bpf/vpnguard.h, a row on the real kernel.

vpnguard.h says rules 1-8 are evaluated in order and the first that matches decides (judge() in
bpf/vg_rules.bpf.h). Each row puts an attempt where two rules (or more) both match and checks
that the one the header names wins: by the result line, by the far side (every counter a row does
not name stays 0) and by the guard's per-reason denial counters of `status --json` (every reason
a row does not name stays unmoved; "no policy" rows put the policy back before reading them:
status lists guards by their policy).

The world (one per module, tests/lib/vgtopo.py routing "subnets"): HOME, INET, a wireguard-go
tunnel, a TCP listener in INET (port P) and a dual-stack one in HOME (LP), and a third namespace
joined to INET by a veth of its own, default route via INET ("third" counts what arrives from it).
Every row attaches a fresh --no-agent guard of cgroup "guarded", then makes its condition true:
the policy deleted from the pinned vg_policy (bpftool), vg_state written CLOSED / with a lease
run out / running / deleted, the tunnel deleted (made again after the row). Tunnel guards:
--allow LAN --allow fd00:99::/64 (the veth's IPv6 net) --dns R --dns L --dns I6; gateway guards:
--gateway I:P --gateway GW (any port) --allow LAN --dns R, no tunnel, netns cookie 0.

Claim of the header -> the test that proves it. order = this file, later =
test_rule_order_later.py, notes = test_rule_order_notes.py, facts_kept = test_facts_kept.py;
rules, tc, steering, steering_rows, egress_steering = test_<name>.py; tunnel_state,
tunnel_deleted, cli_gateway, cli_events, cli_reattach, agent_netlink, agent_lease =
test_<name>.py.

 every hook, descendants too     rules::test_nested[*] (a child cgroup of the guarded one)
 1 loopback, whatever else holds
     before 2 (no policy)        order::test_loopback_first[no policy: *]
     before 3 (netns)            rules::test_netns_rule[loopback in the third netns *],
                                 order::test_loopback_first[third netns, *]
     before 4 (DNS)              order::test_loopback_first[*DNS to a local stub 127.0.0.53]
     before 6 (::1)              rules::test_rule[loopback * ::1*]
     before 7 (closed)           order::test_loopback_first[closed: *], notes::test_gateway[closed:
                                 loopback]
     before 8 (no tunnel)        order::test_loopback_first[tunnel deleted: *, closed and tunnel *]
     leaving by lo is local      order::test_loopback_first[own address: *] (no off_tunnel)
 2 no policy -> no_policy        order::test_no_policy_first[Internet host, TCP Internet host]
     before 3-8                  order::test_no_policy_first[*: no_policy, not *] (netns, dns,
                                 allowed subnet, ipv6, closed, no_tunnel; setsockopt: sockopt);
                                 notes::test_gateway[no policy: no_policy]
     unreadable headers          NOT TESTED: no socket can send a packet the program cannot parse
 3 netns, when the cookie is set order::test_netns_before[*] (listed and rogue resolver, allowed
     before 4-8                  subnet, IPv6, closed, tunnel deleted); rules::test_netns_rule[*]
     cookie 0: any namespace     notes::test_gateway[third netns: gateway reached]
 4 DNS unless listed
     before 5                    rules::test_rule[DNS udp-53 to an allowed-subnet host*]
     before 6, 7, 8              later::test_dns_before[rogue *: dns, not *]
     53 853 5353 5355, UDP/TCP   rules::test_rule[DNS *rogue resolver-*]
     listed: judged below        later::test_dns_before[listed *] (rule 5 by the veth, 6 ipv6,
                                 7 closed, 8 no_tunnel); rules::test_rule[DNS * listed resolver*];
                                 notes::test_gateway[listed resolver, not a gateway: not_gateway]
 5 allow, on any interface       rules::test_rule[allowed subnet*]
     before 6, 7, 8              later::test_allow_before[closed: *, lease run out: *, tunnel
                                 deleted: *, allowed IPv6 net*]; notes::test_gateway[closed:
                                 allowed subnet, allowed subnet: not not_gateway]
     discovery in allow          steering_rows::test_discovery[LSD/SSDP/NAT-PMP to *-*],
                                 later::test_allow_before[discovery * the allowed *]
     discovery elsewhere: 6-8    steering_rows::test_discovery[NAT-PMP through the tunnel*,
                                 *multicast*, TCP to port 1900*],
                                 later::test_allow_before[discovery port * to the Internet*,
                                 discovery port * to an IPv6 host*]
 6 IPv6
     before 7, 8                 later::test_ipv6_before[closed: *, TCP, closed*, tunnel deleted*],
                                 notes::test_gateway[IPv6: *, closed: IPv6: *]
     v4-mapped is IPv4           rules::test_rule[v4-mapped*], later::test_ipv6_before[v4-mapped*],
                                 later::test_allow_before[v4-mapped allowed subnet, closed]
 7 CLOSED or lease run out       tunnel_state::test_row[*]; later::test_closed_before[lease run *]
     before 8                    later::test_closed_before[closed and tunnel deleted*, TCP, closed
                                 and tunnel deleted*, lease run out and tunnel deleted*];
                                 notes::test_gateway[closed: the gateway*, closed: a non-gateway*,
                                 lease run out*] (gateway mode: closed before not_gateway)
     lease running: open         later::test_closed_before[lease running: through the tunnel]
     no vg_state (judge's note)  later::test_closed_before[no vg_state entry: closed]
 8 tunnel up and present         steering::test_no_tunnel_without_agent, tunnel_deleted::test_*,
                                 agent_netlink::test_link_down_up_reaches_the_map
     leave by it, else off_tunnel egress_steering::test_steering[sendmsg IP_PKTINFO * the veth-*]
     gateway: gw (port 0: any)   notes::test_gateway[gateway reached, port-less gateway*, the
                                 gateway's address, another port*]; cli_gateway::test_gateway[*]
 Steering (mark, rules, table T, steering::test_rules_made_changed_and_removed,
   no binding, recreated tunnel) test_connections_come_back; steering_rows::test_socket_types[*]
     a socket predating the      NOT TESTED (marked at its next connect() or sendmsg())
     guard
 Facts read again (1 ms + tick)  facts_kept::test_kept[policy deleted*, guard written CLOSED*]
                                 (the far side's latest datagram); tunnel_state::
                                 test_closed_reaction_time[*]
     attach waits them out       facts_kept::test_kept[attach replacing the policy*];
                                 cli_reattach::test_reattach_*
     kept until the lease's end  agent_lease::test_no_agent_lease_runs_out (closed on time);
                                 after a suspend: NOT TESTED
 setsockopt steering options     egress_steering::test_steering[SO_BINDTO*, IP_UNICAST_IF*,
                                 IPV6_UNICAST_IF*];
                                 steering_rows::test_multicast_joins[*_MULTICAST_IF*]
     clearing them is fine       steering_rows::test_multicast_joins[*_MULTICAST_IF cleared-*],
                                 notes::test_option_cleared[*] (SO_BINDTODEVICE "" and
                                 SO_BINDTOIFINDEX 0 were refused until this test found it)
     SO_MARK but its own         steering::test_so_mark[*],
                                 egress_steering::test_steering[SO_MARK*]
     joins but on the tunnel     steering_rows::test_multicast_joins[*]
     gateway: every join refused notes::test_gateway_joins[*]
 Raw inet sockets refused at    egress_steering::test_steering[raw*] (an AF_PACKET socket is
     creation                    made: see the tc rows)
 tc: the tunnel's source         tc::test_tc[*]
 tc: the guard's packets, unless notes::test_tc[AF_PACKET: *] (Internet host dropped off_tunnel,
     rule 1 or 5 allows          open or closed; allowed subnet and loopback destination pass)
 tc: no policy drops the       notes::test_tc[no policy: a guard's AF_PACKET packet*]; an
     guard's packets (rule 2)    unguarded sender passes: notes::test_tc[no policy: the tunnel's*]
 AF_PACKET outside the tunnel's  notes::test_tc[third netns: a guard's AF_PACKET packet*] (the
     namespace: judged by nothing limit, as the header states it)
 Counters exact, events limited  cli_events::test_rate_limit (2000 denials counted, 20 a window)

Run one case: pytest-3 tests/kernel/test_rule_order.py -k 'no and policy and TCP'
"""
import contextlib
import json
import re
import subprocess
import time

import pytest

from vgguard import Guard, kernel_lock_held, pin_root
from vgproc import netns_remove, wait_until
from vgtopo import Topology
from vgworld import PY, TOOLS, Attempt, Listener, World, words

P, LP = 5002, 7001
V6NET = "fd00:99::/64"
# An IPv6 resolver nobody holds: only its judgement matters.
ROGUE6 = "2001:db8:100::53"
THIRD_SRC, THIRD_GW = "10.98.0.1", "10.98.0.2"

KINDS = {
    "tunnel": lambda t: ["--allow", t.lan_net, "--allow", V6NET, "--dns", t.resolver,
                         "--dns", t.lan_host, "--dns", t.inet_host6],
    "gateway": lambda t: ["--gateway", f"{t.inet_host}:{P}", "--gateway", t.gw_ip,
                          "--allow", t.lan_net, "--dns", t.resolver],
}
CONDITIONS = ("open", "no_policy", "closed", "lease_expired", "lease_running", "no_state",
              "tunnel_deleted")


@pytest.fixture(scope="module")
def world(vg):
    with kernel_lock_held(), Topology() as t:
        w = World(t)
        w.vg = vg
        s = t.suffix
        w.third, w.third_veth, w.third_inet = f"vg{s}ro3", f"vg{s}r3", f"vg{s}r3i"
        w.add_table("vgro", "counter third { }\n"
                    "chain pre { type filter hook prerouting priority -320; policy accept;\n"
                    f'iifname "{w.third_inet}" ip saddr 10.98.0.0/24 counter name third\n}}',
                    strict=("third",))
        try:
            t.run(["ip", "netns", "add", w.third], check=True)
            for argv in (["ip", "-n", w.third, "link", "set", "lo", "up"],
                         ["ip", "-n", w.third, "link", "add", w.third_veth, "type", "veth", "peer",
                          "name", w.third_inet, "netns", t.inet],
                         ["ip", "-n", w.third, "addr", "add", f"{THIRD_SRC}/24", "dev",
                          w.third_veth],
                         ["ip", "-n", t.inet, "addr", "add", f"{THIRD_GW}/24", "dev", w.third_inet],
                         ["ip", "-n", w.third, "link", "set", w.third_veth, "up"],
                         ["ip", "-n", t.inet, "link", "set", w.third_inet, "up"],
                         ["ip", "-n", w.third, "route", "add", "default", "via", THIRD_GW]):
                t.run(argv, check=True)
            t.run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                   "net.ipv4.conf.default.rp_filter=0"], netns=w.third, check=True)
            Listener(t, "tcp", P)
            Listener(t, "tcp", LP, "--v6", netns=t.home)
            w.cg = t.cgroup("guarded")
            yield w
        finally:
            netns_remove(w.third)


# -- the pinned maps, by bpftool ----------------------------------------------------
def _hex(n, v):
    return [f"{b:02x}" for b in (v % (1 << (8 * n))).to_bytes(n, "little")]


def _bpftool(*args):
    r = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"bpftool {' '.join(args[:4])}: {r.stderr.strip() or r.stdout}"
    return r.stdout


def _pin(name):
    return f"{pin_root()}/{name}"


def write_state(gid, state, deadline_ns=0):
    """vg_state[gid] = {state, lease_deadline_ns} (struct vg_state: u32, u32 pad, u64)."""
    _bpftool("map", "update", "pinned", _pin("vg_state"), "key", "hex", *_hex(8, gid),
             "value", "hex", *_hex(4, state), *_hex(4, 0), *_hex(8, deadline_ns))


def boot_ns():
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def take_policy(gid):
    """Deletes vg_policy[gid]; returns its bytes (hex words) to put back."""
    value = json.loads(_bpftool("map", "lookup", "pinned", _pin("vg_policy"), "key", "hex",
                                *_hex(8, gid)))["value"]
    _bpftool("map", "delete", "pinned", _pin("vg_policy"), "key", "hex", *_hex(8, gid))
    return [v[2:] for v in value]


def put_policy(gid, value):
    _bpftool("map", "update", "pinned", _pin("vg_policy"), "key", "hex", *_hex(8, gid),
             "value", "hex", *value)


# -- one row ------------------------------------------------------------------------
AF_PACKET = r"""
import socket, struct, sys
dev, mac, src, dst, port = sys.argv[1:6]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
udp = struct.pack("!HHHH", 40000, int(port), 12, 0) + b"vgro"
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
try:
    print("sent", s.sendto(ip + udp, (dev, 0x0800, 0, 0, bytes.fromhex(mac.replace(":", "")))))
except OSError as e:
    print("errno", e.errno)
"""


def attempt_argv(w, where, args):
    """The command of a row: vgprobe ARGS; "afpacket DST PORT" (one hand-made IPv4 UDP packet on
    an AF_PACKET socket, out of the row's namespace's veth, around every inet hook); "sockopt
    KIND SPEC" (tests/tools/sockopt_probe.py)."""
    t = w.t
    # '' is an empty argument (SO_BINDTODEVICE "" unbinds).
    a = ["" if x == "''" else x for x in words(t, args, P=P, LP=LP, D6=ROGUE6).split()]
    if a[0] == "afpacket":
        dev, peer, src, ns = ((t.veth_home, t.veth_inet, t.real_ip, t.home) if where == "home"
                              else (w.third_veth, w.third_inet, THIRD_SRC, w.third))
        mac = t.run(["cat", f"/sys/class/net/{peer}/address"], netns=t.inet,
                    check=True).stdout.strip()
        return [PY, "-c", AF_PACKET, dev, mac, src] + a[1:]
    if a[0] == "sockopt":
        return [PY, f"{TOOLS}/sockopt_probe.py"] + a[1:] + ["--hold", "1"]
    return [t.vgprobe] + a


@contextlib.contextmanager
def fresh_guard(w, kind, conds):
    """A new guard of kind with conds made true (but no_policy: the row's to take); the tunnel
    deleted by a row is made again after the guard is gone."""
    t, deleted = w.t, False
    try:
        with Guard(w.vg, t, w.cg, *KINDS[kind](t), tunnel=kind == "tunnel") as g:
            if "closed" in conds:
                write_state(g.gid, 1)
            if "lease_expired" in conds:
                write_state(g.gid, 0, boot_ns() - 1_000_000_000)
            if "lease_running" in conds:
                write_state(g.gid, 0, boot_ns() + 60_000_000_000)
            if "no_state" in conds:
                _bpftool("map", "delete", "pinned", _pin("vg_state"), "key", "hex",
                         *_hex(8, g.gid))
            if "tunnel_deleted" in conds:
                deleted = True
                t.tunnel_down("del")
                assert wait_until(lambda: g.status()["tunnel_present"] is False, 5, 0.1), g.status()
            st = g.status()
            want = "closed" if conds & {"closed", "lease_expired", "no_state"} else "open"
            assert st["state"] == want, f"{sorted(conds)}: status says {st['state']}"
            yield g
    finally:
        if deleted:
            t.tunnel_up()


def check_row(w, kind, cond, where, user, result, far, denied, args):
    """One row: a fresh guard, its condition, one attempt (in the guard's cgroup unless where
    says "unguarded"), judged by result line, far side and denials."""
    conds = set(cond.split("+"))
    assert conds <= set(CONDITIONS), cond
    t = w.t
    far = dict(far)
    if "tunnel_deleted" in conds:
        # HOME's kernel answering WireGuard datagrams for the deleted client's port.
        far.setdefault("wgicmp", "*")
    with fresh_guard(w, kind, conds) as g:
        before = Attempt(w, w.vg, g.gid)
        saved = take_policy(g.gid) if "no_policy" in conds else None
        try:
            argv = attempt_argv(w, "third" if where == "third" else "home", args)
            r = t.run(argv, cg=None if where == "unguarded" else w.cg,
                      netns=w.third if where == "third" else t.home,
                      user=None if user == "root" else user)
            got = (r.stdout.strip().splitlines() or [""])[-1]
        finally:
            if saved is not None:
                put_policy(g.gid, saved)
        assert re.fullmatch(result, got), f"result {got!r}, want /{result}/ ({r.stderr.strip()})"
        before.expect(far=far, denied=denied)


ROW_ARGS = "kind,cond,where,user,result,far,denied,args"


def table(rows, kind="tunnel", user="nobody"):
    """Rows (name, condition, where, result line, far side, denials, arguments) as a
    parametrization of ROW_ARGS, ids their names."""
    return pytest.mark.parametrize(ROW_ARGS, [(kind, r[1], r[2], user) + r[3:] for r in rows],
                                   ids=[r[0] for r in rows])

SENT, REFUSED = "sent 1/1", "sent 0/1 errno EPERM"

# name, condition, where, result line, far side, denials, vgprobe arguments
LOOPBACK = [
    ("no policy: 127.0.0.1", "no_policy", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("no policy: ::1", "no_policy", "home", SENT, {}, {}, "sendto ::1 9"),
    ("no policy: TCP 127.0.0.1", "no_policy", "home", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("no policy: DNS to a local stub 127.0.0.53", "no_policy", "home", SENT, {}, {},
     "sendto 127.0.0.53 53"),
    ("DNS to a local stub 127.0.0.53", "open", "home", SENT, {}, {}, "sendto 127.0.0.53 53"),
    ("closed: 127.0.0.1", "closed", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("closed: TCP ::1", "closed", "home", "connected", {}, {}, "connect tcp ::1 {LP}"),
    ("tunnel deleted: 127.0.0.1", "tunnel_deleted", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("tunnel deleted: TCP 127.0.0.1", "tunnel_deleted", "home", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("closed and tunnel deleted: ::1", "closed+tunnel_deleted", "home", SENT, {}, {},
     "sendto ::1 9"),
    ("third netns, closed: 127.0.0.1", "closed", "third", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("third netns, no policy: 127.0.0.1", "no_policy", "third", SENT, {}, {},
     "sendto 127.0.0.1 9"),
    # Judged a tunnel destination at sendmsg/connect, its packets leave by lo, not the tunnel.
    ("own address: UDP leaves by lo", "open", "home", SENT, {}, {}, "sendto {REAL} 9"),
    ("own address: TCP leaves by lo", "open", "home", "connected", {}, {},
     "connect tcp {REAL} {LP}"),
]


@table(LOOPBACK)
def test_loopback_first(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


NO_POLICY = [
    ("Internet host", "no_policy", "home", REFUSED, {}, {"no_policy": 1}, "sendto {I} 9"),
    ("TCP Internet host", "no_policy", "home", "errno EPERM", {}, {"no_policy": 1},
     "connect tcp {I} {P}"),
    ("closed: no_policy, not closed", "no_policy+closed", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {I} 9"),
    ("tunnel deleted: no_policy, not no_tunnel", "no_policy+tunnel_deleted", "home", REFUSED, {},
     {"no_policy": 1}, "sendto {I} 9"),
    ("rogue resolver: no_policy, not dns", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {D} 53"),
    ("allowed subnet: no_policy, not allowed", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {L} 9"),
    ("IPv6: no_policy, not ipv6", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {I6} 9"),
    ("third netns: no_policy, not netns", "no_policy", "third", REFUSED, {}, {"no_policy": 1},
     "sendto {I} 9"),
    ("setsockopt SO_BINDTODEVICE veth: no_policy, not sockopt", "no_policy", "home",
     "errno EPERM", {}, {"no_policy": 1}, "setsockopt bindtodevice {VETH}"),
]


@table(NO_POLICY)
def test_no_policy_first(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


NETNS = [
    ("listed resolver", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {R} 53"),
    ("rogue resolver: netns, not dns", "open", "third", REFUSED, {}, {"netns": 1},
     "sendto {D} 53"),
    ("allowed subnet", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {L} 9"),
    ("TCP allowed subnet", "open", "third", "errno EPERM", {}, {"netns": 1},
     "connect tcp {L} {P}"),
    ("IPv6: netns, not ipv6", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {I6} 9"),
    ("closed: netns, not closed", "closed", "third", REFUSED, {}, {"netns": 1}, "sendto {I} 9"),
    ("tunnel deleted: netns, not no_tunnel", "tunnel_deleted", "third", REFUSED, {},
     {"netns": 1}, "sendto {I} 9"),
]


@table(NETNS)
def test_netns_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)
