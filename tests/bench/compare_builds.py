#!/usr/bin/python3
"""compare_builds - the programs' own time of two or more builds of vpnguard-bpf, in one world.

    python3 tests/bench/compare_builds.py before=/tmp/old/build/vpnguard-bpf \\
        after=build/vpnguard-bpf [--rounds 5] [--floor]

`make bench` measures one build against no enforcement and nftables; on a VM its wall-clock
figures move by a few hundred ns per call from one run to the next, more than a change to the
programs does. This puts the builds side by side instead: the world of tests/bench/run.sh
(namespaces HOME and INET, the kernel path HOME -> INET that stands for the tunnel, a TCP server
in INET), and in each round every build in turn (the order reversed every other round) attached
to the same cgroup (`attach --no-agent`), running the same vgbench loops (sendto, UDP connect,
TCP connect), once with kernel.bpf_stats_enabled off for the wall clock and once with it on
for the programs' time. It prints, per workload, each program's ns per operation (run_time_ns /
operations, the median over the rounds) and the wall-clock ns per operation, with "none" (an
unguarded cgroup) for reference. The programs' own time includes the two clock reads bpf_stats
adds to each run, alike for every build; the wall clock has none of them, and the row "wall,
bpf_stats on" shows what they cost.

--floor adds "empty programs": a program that allows everything at each of vpnguard's seven
hooks (tests/bench/empty.bpf.c), attached with bpftool. Its figures are the kernel's path into a
program at those hooks, which no change to vpnguard's programs can take away; a build's figures
above them are its rules.

Needs root, build/vgbench and build/vgproginfo (make build/vgbench build/vgproginfo;
build/empty.bpf.o for --floor) and the kernel tests' lock, which it holds.
"""
import argparse
import contextlib
import functools
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from vgguard import kernel_lock_held  # noqa: E402
from vgtopo import Topology  # noqa: E402

VGBENCH = os.path.join(REPO, "build", "vgbench")
VGPROGINFO = os.path.join(REPO, "build", "vgproginfo")
EMPTY_OBJ = os.path.join(REPO, "build", "empty.bpf.o")
# tests/bench/empty.bpf.c's programs and the hooks they go to, vpnguard's seven
FLOOR_HOOKS = ("sock_create", "connect4", "connect6", "sendmsg4", "sendmsg6", "setsockopt",
               "egress")
PATH_NET, PATH_HOME_IP, PATH_INET_IP = "10.77.0.0/24", "10.77.0.2", "10.77.0.1"
BENCH_NET, PEER_NET, PEER_PREFIX, SERVER_IP, PORT, ACCEPT_PORT = (
    "198.18.0.0/15", "198.19.0.0", "198.19.0.0/16", "198.18.0.1", "20000", "5001")
# name, vgbench arguments, operations
WORKLOADS = [
    ("UDP sendto (ns/call)", ["sendto", PEER_NET, PORT, "--count", "200000"], 200000),
    ("UDP connect (ns/conn)", ["connect", "udp", PEER_NET, PORT, "--count", "40000"], 40000),
    ("TCP connect (ns/conn)", ["connect", "tcp", "198.18.0.0", ACCEPT_PORT, "--count", "8000"], 8000),
]


def run(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])}: {r.stderr.strip()}")
    return r.stdout


def prog_stats(cg):
    """{program name: (run_cnt, run_time_ns)} of the programs attached to cg."""
    stats = {}
    for line in run(VGPROGINFO, cg).splitlines():
        name, runs, ns = line.split()[:3]
        stats[name] = (int(runs), int(ns))
    return stats


def kernel_path(t):
    """A veth pair HOME <-> INET that HOME routes the benchmark network through (run.sh's)."""
    home, inet = f"vg{t.suffix}ct", f"vg{t.suffix}ci"
    run("ip", "-n", t.home, "link", "add", home, "type", "veth", "peer", "name", inet,
        "netns", t.inet)
    for ns, dev, addr in ((t.home, home, PATH_HOME_IP), (t.inet, inet, PATH_INET_IP)):
        run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        run("ip", "-n", ns, "link", "set", dev, "up")
    run("ip", "-n", t.home, "route", "add", BENCH_NET, "via", PATH_INET_IP, "dev", home)
    run("ip", "-n", t.inet, "route", "add", "blackhole", PEER_PREFIX)
    run("ip", "-n", t.inet, "addr", "add", f"{SERVER_IP}/32", "dev", "lo")
    return home


def bpf_stats(on):
    run("sysctl", "-qw", f"kernel.bpf_stats_enabled={int(on)}")


def wall_ns(t, cg, args):
    """One vgbench run on the load CPU: its ns per call or per connection."""
    r = t.run(["taskset", "-c", str(os.cpu_count() - 1), VGBENCH] + args, cg=cg, netns=t.home,
              check=True)
    result = dict(kv.split("=", 1) for kv in r.stdout.split())
    return float(result.get("ns_per_call") or result["ns_per_conn"])


def measure(t, cg, guarded_cg, figures, label):
    """One run of every workload in cg, with bpf_stats off (the wall clock) and on (the
    programs of guarded_cg, when cg is it)."""
    for name, args, ops in WORKLOADS:
        bpf_stats(False)
        figures.setdefault((name, "wall", label), []).append(wall_ns(t, cg, args))
        if cg != guarded_cg:
            continue
        bpf_stats(True)
        before = prog_stats(guarded_cg)
        figures.setdefault((name, "wall, bpf_stats on", label), []).append(
            wall_ns(t, cg, args))
        total = 0.0
        for prog, (cnt, ns) in prog_stats(guarded_cg).items():
            cnt0, ns0 = before.get(prog, (0, 0))
            if cnt - cnt0 > ops // 20:
                figures.setdefault((name, prog, label), []).append((ns - ns0) / ops)
                total += (ns - ns0) / ops
        figures.setdefault((name, "all programs", label), []).append(total)


@contextlib.contextmanager
def build_attached(vg, t, cg, tunnel):
    """The build vg guarding cg, as a user attaches it, while the block runs."""
    run(vg, "attach", "--cgroup", cg, "--tunnel", tunnel, "--netns", t.home_netns,
        "--allow", t.lan_net, "--dns", t.resolver, "--no-agent")
    try:
        yield
    finally:
        run(vg, "detach", "--cgroup", cg)


@contextlib.contextmanager
def floor_attached(t, cg, tunnel):
    """tests/bench/empty.bpf.c at each of vpnguard's hooks of cg while the block runs."""
    pins = f"/sys/fs/bpf/vgfloor-{os.getpid()}"
    run("bpftool", "prog", "loadall", EMPTY_OBJ, pins)
    attached = []
    try:
        for hook in FLOOR_HOOKS:
            run("bpftool", "cgroup", "attach", cg, hook, "pinned", f"{pins}/fl_{hook}", "multi")
            attached.append(hook)
        yield
    finally:
        for hook in attached:
            run("bpftool", "cgroup", "detach", cg, hook, "pinned", f"{pins}/fl_{hook}")
        shutil.rmtree(pins)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+", metavar="NAME=BINARY")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--floor", action="store_true",
                    help="also empty programs at vpnguard's hooks (build/empty.bpf.o)")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds]
    if any(len(b) != 2 or not os.access(b[1], os.X_OK) for b in builds):
        ap.error("each build is NAME=BINARY, an executable vpnguard-bpf")
    if a.floor and not os.access(EMPTY_OBJ, os.R_OK):
        ap.error(f"--floor: no {EMPTY_OBJ} (make build/empty.bpf.o)")
    guards = [(label, functools.partial(build_attached, vg)) for label, vg in builds]
    if a.floor:
        guards.insert(0, ("empty programs", floor_attached))
    figures = {}
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats_were = f.read().strip()
    with kernel_lock_held(), Topology(quiet=True) as t:
        tunnel = kernel_path(t)
        t.spawn(["taskset", "-c", str(os.cpu_count() - 1), VGBENCH, "accept", SERVER_IP,
                 ACCEPT_PORT], netns=t.inet, stdout=subprocess.DEVNULL)
        plain, guarded = t.cgroup("plain"), t.cgroup("guarded")
        try:
            for rnd in range(a.rounds):
                measure(t, plain, guarded, figures, "none")
                for label, attached in guards if rnd % 2 == 0 else guards[::-1]:
                    with attached(t, guarded, tunnel):
                        measure(t, guarded, guarded, figures, label)
        finally:
            run("sysctl", "-qw", f"kernel.bpf_stats_enabled={stats_were}")
    labels = [g[0] for g in guards]
    for name, _, _ in WORKLOADS:
        # Each round's own difference: a VM's host moves every figure from round to round.
        none = figures[(name, "wall", "none")]
        for lab in labels:
            figures[(name, "wall − none", lab)] = [
                w - n for w, n in zip(figures[(name, "wall", lab)], none)]
    print("| workload | program | " + " | ".join(["none"] + labels) + " |")
    print("| --- | --- |" + " ---: |" * (len(labels) + 1))
    for name, _, _ in WORKLOADS:
        rows = sorted({k[1] for k in figures if k[0] == name},
                      key=lambda p: (p.startswith("wall"), p == "all programs", p))
        for prog in rows:
            cells = [figures.get((name, prog, lab)) for lab in ["none"] + labels]
            print(f"| {name} | {'wall clock' if prog == 'wall' else prog} | " + " | ".join(
                f"{statistics.median(c):.0f}" if c else "–" for c in cells) + " |")
    print(f"\nmedians of {a.rounds} rounds; programs: run_time_ns per operation (bpf_stats); "
          "wall − none: each round's difference")


if __name__ == "__main__":
    main()
