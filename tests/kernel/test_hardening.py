"""A hostile operator against attach, detach and the agent, on the real kernel.

Every exit 0 of attach must mean enforced: all seven programs on the cgroup,
a policy, and a rogue resolver refused as the far side sees it. Enforcement
must outlive its pins; a failed start changes nothing; what is gone is said.

Run one case: pytest-3 tests/kernel/test_hardening.py -k concurrent
"""
import json
import os
import shutil
import stat
import subprocess
import threading
import time

import pytest

from vgguard import Guard, Snapshot, agent_pidfile, pin_root
from vgproc import netns_remove, wait_until

HOOKS = ("cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_setsockopt",
         "cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_udp4_sendmsg",
         "cgroup_udp6_sendmsg")


def vg_programs(cg):
    """{attach type: [program names]} of what the kernel holds on cg itself."""
    r = subprocess.run(["bpftool", "-j", "cgroup", "show", cg], capture_output=True, text=True)
    out = {}
    for p in json.loads(r.stdout.strip() or "[]"):
        if p.get("name", "").startswith("vg_"):
            out.setdefault(p["attach_type"], []).append(p["name"])
    return out


def attach_argv(vg, topo, cg, *more):
    return [vg, "attach", "--cgroup", cg, "--tunnel", topo.wg_client, "--netns", topo.home_netns,
            "--dns", topo.resolver, "--no-agent"] + list(more)


def assert_enforced(topo, g):
    """All seven hooks hold exactly one program of the guard, there is a policy, and a rogue
    resolver and IPv6 are refused with nothing on the far side."""
    progs = vg_programs(g.cg)
    assert sorted(progs) == sorted(HOOKS) and all(len(v) == 1 for v in progs.values()), progs
    assert g.status() is not None, "no policy for the guard"
    before = Snapshot(topo, g)
    assert g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody") == "sent 0/1 errno EPERM"
    assert g.run([topo.vgprobe, "sendto", topo.inet_host6, "9"], "nobody") == "sent 0/1 errno EPERM"
    before.expect(denied={"dns": 1, "ipv6": 1})


def test_concurrent_attach(vg, kernel_lock, topo):
    """Item 1: two attaches of one cgroup at once, many rounds: each exit 0 is a whole guard."""
    cg = topo.cgroup("race")
    g = Guard(vg, topo, cg)
    g.attached = True  # so that the cleanup detaches
    try:
        # Each round from nothing: the race is between two first attaches.
        for rnd in range(40):
            procs = [subprocess.Popen(attach_argv(vg, topo, cg), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
            codes = [(p.wait(60), p.stderr.read()) for p in procs]
            assert all(c == 0 for c, _ in codes), f"round {rnd}: {codes}"
            assert_enforced(topo, g)
            subprocess.run([vg, "detach", "--cgroup", cg], check=True, capture_output=True)
            assert vg_programs(cg) == {}
    finally:
        g.close()


def test_pins_removed_no_agent(vg, kernel_lock, topo):
    """Item 2: rm -rf of the pins leaves the programs on the cgroup, and status says so (not
    "no guards attached"); detach still removes them."""
    with Guard(vg, topo, topo.cgroup("g"), "--dns", topo.resolver) as g:
        shutil.rmtree(pin_root())
        progs = vg_programs(g.cg)
        assert sorted(progs) == sorted(HOOKS), progs
        r = subprocess.run([vg, "status"], capture_output=True, text=True, timeout=60)
        rel = os.path.relpath(g.cg, topo.cg2)
        assert r.returncode == 0 and "no pins" in r.stdout and rel in r.stdout, r
        before = Snapshot(topo)
        assert g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody") == "sent 0/1 errno EPERM"
        assert g.run([topo.vgprobe, "sendto", topo.inet_host, "9"], "nobody") == "sent 1/1"
        before.expect(far={"tunnel": 1})
        r = subprocess.run([vg, "detach", "--cgroup", g.cg], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        g.attached = False
        assert vg_programs(g.cg) == {}
        assert not os.path.exists(pin_root())
        rules = topo.run(["ip", "-n", topo.home, "rule"]).stdout
        assert "fwmark" not in rules, rules


def test_private_bpffs_goes_away(vg, kernel_lock, topo):
    """Item 2: attach in a mount namespace of its own, with a bpffs of its own that goes
    with it: the guard stays, and detach from the host finds it from the kernel."""
    cg = topo.cgroup("g")
    script = "mount -t bpf bpf /sys/fs/bpf && exec \"$@\""
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] +
                       attach_argv(vg, topo, cg), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    g = Guard(vg, topo, cg)
    g.attached = True
    try:
        assert not os.path.exists(os.path.join(pin_root(), str(g.gid)))
        assert sorted(vg_programs(cg)) == sorted(HOOKS)
        before = Snapshot(topo)
        assert g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody") == "sent 0/1 errno EPERM"
        before.expect()
        r = subprocess.run([vg, "detach", "--cgroup", cg], capture_output=True, text=True)
        assert r.returncode == 0 and vg_programs(cg) == {}, r.stderr
        g.attached = False
    finally:
        g.close()


def test_agent_restores_pins(vg, kernel_lock, topo):
    """Item 2: the agent notices its pins vanished, makes them again, logs and says so."""
    with Guard(vg, topo, topo.cgroup("g"), "--probe-interval", "1s", agent=True) as g:
        assert wait_until(lambda: (g.status() or {}).get("tunnel_present"), 10, 0.2)
        shutil.rmtree(pin_root())
        assert wait_until(lambda: g.status() is not None, 10, 0.2), "pins were not made again"
        assert wait_until(lambda: any(e.get("event") == "pins" and e.get("action") == "restored"
                                      for e in g.events()), 5, 0.2), g.events()[-5:]
        assert g.proc.poll() is None
        assert_enforced(topo, g)


def test_container_beside_agent_refused(vg, kernel_lock, topo):
    """Item 3: the running agent would not follow these containers: refused, nothing attached."""
    with Guard(vg, topo, topo.cgroup("g"), agent=True):
        other = topo.cgroup("other")
        for words in (["--container", "qbittorrent"], ["--tunnel-container", "gluetun"]):
            r = subprocess.run([vg, "attach", "--cgroup", other, "--tunnel", topo.wg_client] + words,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "config file" in r.stderr, r.stderr
            assert vg_programs(other) == {}


@pytest.mark.parametrize("case", ["run_dir", "log_unwritable", "log_symlink"])
def test_agent_start_failure_attaches_nothing(vg, kernel_lock, topo, case):
    """Item 7: an agent that cannot take its pidfile or open its log attaches nothing."""
    cg = topo.cgroup("g")
    env = dict(os.environ)
    log = os.path.join(topo.dir, "events.jsonl")
    if case == "run_dir":
        env["VPNGUARD_RUN_DIR"] = "/proc/vgtest-not-a-dir"   # mkdir fails there
    elif case == "log_unwritable":
        ro = os.path.join(topo.dir, "ro")
        os.mkdir(ro)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", ro], check=True)
        log = os.path.join(ro, "events.jsonl")
    else:
        os.symlink("/etc/motd", log)
    try:
        r = subprocess.run([vg, "attach", "--cgroup", cg, "--tunnel", topo.wg_client, "--netns",
                            topo.home_netns, "--log", log], capture_output=True, text=True,
                           timeout=60, env=env)
    finally:
        if case == "log_unwritable":
            subprocess.run(["umount", "-l", os.path.dirname(log)])
    assert r.returncode == 1, r.stderr
    assert {"run_dir": "vgtest-not-a-dir", "log_unwritable": "Read-only file system",
            "log_symlink": "symlink"}[case] in r.stderr, r.stderr
    assert vg_programs(cg) == {}
    assert Guard(vg, topo, cg).status() is None


def test_two_agents_at_once(vg, kernel_lock, topo):
    """Item 8: of two agents started together one runs; the other's guard has no lease
    (nobody would renew it) and stays open past the lease an agent would give it."""
    ga, gb = (Guard(vg, topo, topo.cgroup(n), "--probe-interval", "1s", agent=True) for n in "ab")
    threads = [threading.Thread(target=_attach_quiet, args=(g,)) for g in (ga, gb)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        running = [g for g in (ga, gb) if g.proc.poll() is None]
        loser = [g for g in (ga, gb) if g.proc.poll() is not None]
        assert len(running) == 1 and len(loser) == 1, (ga.stderr(), gb.stderr())
        assert loser[0].proc.returncode == 0, loser[0].stderr()
        assert "already running" in loser[0].stderr()
        time.sleep(4)   # past the 3 s lease an agent gives at a 1 s interval
        st = loser[0].status()
        assert st["state"] == "open" and st["lease_left_s"] is None, st
        assert running[0].status()["state"] == "open"
        # Beside a running agent a lease nobody would renew is refused.
        c = topo.cgroup("c")
        r = subprocess.run([vg, "attach", "--cgroup", c, "--tunnel", topo.wg_client, "--netns",
                            topo.home_netns, "--lease", "1m"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and "lease" in r.stderr, r.stderr
        assert vg_programs(c) == {}
    finally:
        for g in (ga, gb):
            g.close()


def _attach_quiet(g):
    """Guard.attach of an agent that may lose the race: its assertion is the test's to judge."""
    try:
        g.attach()
    except AssertionError:
        pass


def test_lease_shorter_than_renewal_refused(vg, kernel_lock, topo):
    cg = topo.cgroup("g")
    r = subprocess.run([vg, "attach", "--cgroup", cg, "--tunnel", topo.wg_client, "--netns",
                        topo.home_netns, "--lease", "1s", "--probe-interval", "30s"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--lease" in r.stderr, r.stderr
    assert vg_programs(cg) == {}


def test_cgroup_removed(vg, kernel_lock, topo):
    """Item 9: status says a guarded cgroup is gone, and detach of its path cleans up."""
    cg = topo.cgroup("gone")
    with Guard(vg, topo, cg) as g:
        os.rmdir(cg)
        st = g.status()
        assert st["cgroup_present"] is False, st
        out = subprocess.run([vg, "status"], capture_output=True, text=True).stdout
        assert "GONE" in out, out
        r = subprocess.run([vg, "detach", "--cgroup", cg], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert g.status() is None
        g.attached = False


def test_netns_deleted(vg, kernel_lock, topo):
    """Item 9: status says the tunnel's namespace is gone."""
    with Guard(vg, topo, topo.cgroup("g")) as g:
        netns_remove(topo.home)
        st = g.status()
        assert st["netns_present"] is False and st["tunnel_present"] is False, st
        out = subprocess.run([vg, "status"], capture_output=True, text=True).stdout
        assert "namespace GONE" in out, out


@pytest.mark.parametrize("arg", ["/", ".", "/sys/fs/cgroup", "ROOT"])
def test_root_cgroup_refused(vg, kernel_lock, topo, arg):
    """Item 6: the root cgroup, in every form."""
    arg = topo.cg2 if arg == "ROOT" else arg
    r = subprocess.run([vg, "attach", "--cgroup", arg, "--tunnel", topo.wg_client, "--netns",
                        topo.home_netns, "--no-agent"], capture_output=True, text=True, timeout=60,
                       cwd=topo.cg2 if arg == "." else None)
    if r.returncode == 0:  # a binary that took it: never leave the machine guarded
        subprocess.run([vg, "detach", "--cgroup", topo.cg2], capture_output=True, timeout=60)
    assert r.returncode == 2 and "guard the machine" in r.stderr, r.stderr
    assert vg_programs(topo.cg2) == {}


def test_netns_not_a_network_namespace(vg, kernel_lock, topo):
    """Item 14: --netns of a mount namespace is named as --netns."""
    r = subprocess.run([vg, "attach", "--cgroup", topo.cgroup("g"), "--tunnel", topo.wg_client,
                        "--netns", "/proc/self/ns/mnt", "--no-agent"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "--netns /proc/self/ns/mnt: not a network namespace" in r.stderr, \
        r.stderr


def test_runtime_failure_exits_1(vg, kernel_lock, topo):
    """Item 14: a pin root that is not on bpffs is the machine's failure (1), not bad usage (2)."""
    env = dict(os.environ, VPNGUARD_PIN_ROOT=os.path.join(topo.dir, "not-bpffs"))
    cg = topo.cgroup("g")
    r = subprocess.run(attach_argv(vg, topo, cg), capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 1, r.stderr
    assert vg_programs(cg) == {}


def test_log_disk_full(vg, kernel_lock, topo):
    """Item 10: a new log is made 0600; a full disk loses records, counted and said once; no
    line is cut; once there is room again a 'log' record says how many were lost."""
    d = os.path.join(topo.dir, "small")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], check=True)
    try:
        log = os.path.join(d, "events.jsonl")
        g = Guard(vg, topo, topo.cgroup("g"), agent=True, log=log)
        with g:
            assert stat.S_IMODE(os.stat(log).st_mode) == 0o600, "a new log is not root's alone"
            filler = os.path.join(d, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=64"],
                           capture_output=True)
            for _ in range(3):  # denials to log, 20 a second at most (rate limit)
                g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53", "--count", "50"], "nobody")
                time.sleep(1.1)
            assert wait_until(lambda: "records are counted" in g.stderr(), 5, 0.2), g.stderr()
            assert g.stderr().count("records are counted") == 1
            os.unlink(filler)
            g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody")
            assert wait_until(lambda: "writing again" in g.stderr(), 5, 0.2), g.stderr()
            with open(log) as f:
                recs = [json.loads(line) for line in f]   # every line whole
            lost = [r for r in recs if r.get("event") == "log"]
            assert lost and lost[-1]["lost"] > 0, recs[-3:]
    finally:
        subprocess.run(["umount", "-l", d])
