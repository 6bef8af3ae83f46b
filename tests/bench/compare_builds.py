#!/usr/bin/python3
"""compare_builds - the programs' own time of two or more builds of vpnguard-bpf, in one world.

    python3 tests/bench/compare_builds.py before=/tmp/old/build/vpnguard-bpf \\
        after=build/vpnguard-bpf [--rounds 5]

`make bench` measures one build against no enforcement and nftables; on a VM its wall-clock
figures move by a few hundred ns per call from one run to the next, more than a change to the
programs does. This puts the builds side by side instead: the world of tests/bench/run.sh
(namespaces HOME and INET, the kernel path HOME -> INET that stands for the tunnel, a TCP server
in INET), and in each round every build in turn (the order reversed every other round) attached
to the same cgroup (`attach --no-agent`), running the same vgbench loops (sendto, UDP connect,
TCP connect) with kernel.bpf_stats_enabled. It prints, per workload, each program's ns per
operation (run_time_ns / operations, the median over the rounds) and the wall-clock ns per
operation, with "none" (an unguarded cgroup) for reference. The programs' own time includes the
two clock reads bpf_stats adds to each run, alike for every build.

Needs root, build/vgbench (make build/vgbench) and the kernel tests' lock, which it holds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from vgguard import kernel_lock_held  # noqa: E402
from vgtopo import Topology  # noqa: E402

VGBENCH = os.path.join(REPO, "build", "vgbench")
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
    out = run("bpftool", "-j", "cgroup", "show", cg).strip()
    stats = {}
    for p in json.loads(out) if out else []:
        info = json.loads(run("bpftool", "-j", "prog", "show", "id", str(p["id"])))
        stats[info["name"]] = (info.get("run_cnt", 0), info.get("run_time_ns", 0))
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


def measure(t, cg, guarded_cg, figures, label):
    """One run of every workload in cg; the programs of guarded_cg counted when cg is it."""
    for name, args, ops in WORKLOADS:
        before = prog_stats(guarded_cg) if cg == guarded_cg else {}
        r = t.run(["taskset", "-c", str(os.cpu_count() - 1), VGBENCH] + args, cg=cg,
                  netns=t.home, check=True)
        result = dict(kv.split("=", 1) for kv in r.stdout.split())
        figures.setdefault((name, "wall", label), []).append(
            float(result.get("ns_per_call") or result["ns_per_conn"]))
        total = 0.0
        for prog, (cnt, ns) in prog_stats(guarded_cg).items() if before else ():
            cnt0, ns0 = before.get(prog, (0, 0))
            if cnt - cnt0 > ops // 20:
                figures.setdefault((name, prog, label), []).append((ns - ns0) / ops)
                total += (ns - ns0) / ops
        if before:
            figures.setdefault((name, "all programs", label), []).append(total)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+", metavar="NAME=BINARY")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.builds]
    if any(len(b) != 2 or not os.access(b[1], os.X_OK) for b in builds):
        ap.error("each build is NAME=BINARY, an executable vpnguard-bpf")
    figures = {}
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats_were = f.read().strip()
    with kernel_lock_held(), Topology(quiet=True) as t:
        tunnel = kernel_path(t)
        t.spawn(["taskset", "-c", str(os.cpu_count() - 1), VGBENCH, "accept", SERVER_IP,
                 ACCEPT_PORT], netns=t.inet, stdout=subprocess.DEVNULL)
        plain, guarded = t.cgroup("plain"), t.cgroup("guarded")
        run("sysctl", "-qw", "kernel.bpf_stats_enabled=1")
        try:
            for rnd in range(a.rounds):
                measure(t, plain, guarded, figures, "none")
                for label, vg in builds if rnd % 2 == 0 else builds[::-1]:
                    run(vg, "attach", "--cgroup", guarded, "--tunnel", tunnel, "--netns",
                        t.home_netns, "--allow", t.lan_net, "--dns", t.resolver, "--no-agent")
                    try:
                        measure(t, guarded, guarded, figures, label)
                    finally:
                        run(vg, "detach", "--cgroup", guarded)
        finally:
            run("sysctl", "-qw", f"kernel.bpf_stats_enabled={stats_were}")
    labels = [b[0] for b in builds]
    print("| workload | program | " + " | ".join(["none"] + labels) + " |")
    print("| --- | --- |" + " ---: |" * (len(labels) + 1))
    for name, _, _ in WORKLOADS:
        rows = sorted({k[1] for k in figures if k[0] == name},
                      key=lambda p: (p == "wall", p == "all programs", p))
        for prog in rows:
            cells = [figures.get((name, prog, lab)) for lab in ["none"] + labels]
            print(f"| {name} | {'wall clock' if prog == 'wall' else prog} | " + " | ".join(
                f"{statistics.median(c):.0f}" if c else "–" for c in cells) + " |")
    print(f"\nmedians of {a.rounds} rounds; programs: run_time_ns per operation (bpf_stats)")


if __name__ == "__main__":
    main()
