"""vpnguard-bpf's .deb under a real systemd: Debian 12 booted by systemd-nspawn -b in the
topology's HOME (docs/system-test.md). Every claim about enforcement is judged where the
packets arrive, INET's counters on the host side (tests/lib/vgnft.py): a flood from a
transient service in vpnguard.slice towards 198.51.100.1, which HOME's main table (routing
"split") sends out of the veth, so only the guard's steering puts it in the tunnel and only
its programs keep it off the veth.

Run one case: cd tests && pytest-3 -q -p no:cacheprovider system/test_systemd.py -k kill
Each case brings the machine to the state it needs (installed, configured, running) itself.
"""
import json
import os
import re
import threading
import time

import pytest

from vgguard import Snapshot
from vgproc import wait_until
from vgworld import PROGS, assert_guarded, cg_progs

SLICE = "vpnguard.slice"
CONF = "/etc/vpnguard/vpnguard.conf"
VGPROBE = "/usr/local/bin/vgprobe"


# -- the package in the machine ---------------------------------------------------------------
def config(t, *extra):
    lines = ["[agent]", "log = /var/log/vpnguard/events.jsonl", "", "[guard torrent]",
             "cgroup = /sys/fs/cgroup/vpnguard.slice", f"tunnel = {t.wg_client}"]
    return "\n".join(lines + list(extra)) + "\n"


def installed_version(m):
    r = m.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", "vpnguard-bpf"])
    parts = r.stdout.split()
    return parts[-1] if r.returncode == 0 and parts[:3] == ["install", "ok", "installed"] else None


def apt_install(m, deb):
    """apt-get install ./deb (offline: the root has every Depends and Recommends); seconds."""
    t0 = time.monotonic()
    m.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
           "--allow-downgrades", "-o", "Dpkg::Options::=--force-confold",
           f"/root/debs/{os.path.basename(deb)}"], check=True, timeout=300)
    return time.monotonic() - t0


def fresh(m, debs):
    """No package, no guard: stopped, detached (by the package's binary: installed again if a
    removal left the programs without it), purged."""
    slice_progs = os.path.isdir(m.host_cgroup(SLICE)) and cg_progs(m.host_cgroup(SLICE))
    if not installed_version(m) and slice_progs:
        apt_install(m, debs["current"])
    if installed_version(m):
        m.systemctl("disable", "--now", "vpnguard.service", check=False)
        m.run(["vpnguard-bpf", "detach"], check=True, timeout=120)
        m.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q",
               "vpnguard-bpf"], check=True, timeout=300)
    if os.path.isdir(m.host_cgroup(SLICE)):
        assert cg_progs(m.host_cgroup(SLICE)) == [], "detach left programs on the slice"


def running(m, debs, *extra):
    """The current package installed, configured for the world's tunnel (plus extra lines)
    and vpnguard.service active: what cases 2-4 start from."""
    if installed_version(m) != debs["version"]:
        fresh(m, debs)
        apt_install(m, debs["current"])
    want = config(m.t, *extra)
    if m.run(["cat", CONF]).stdout != want:
        m.put(CONF, want, 0o600)
        if m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "active":
            m.systemctl("reload", "vpnguard")
            wait_reloaded(m)
    m.systemctl("enable", "--now", "vpnguard.service")
    assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "active"
    assert_guarded(m.host_cgroup(SLICE))


def main_pid(m):
    return int(m.show("vpnguard.service", "MainPID")["MainPID"])


def reload_records(m):
    r = m.run(["sh", "-c", "grep '\"reload\"' /var/log/vpnguard/events.jsonl || true"])
    return r.stdout.count("\n")


def wait_reloaded(m, before=None, timeout=30):
    """The agent wrote its reload record (SIGHUP is handled in its loop, after
    `systemctl reload` returned)."""
    before = reload_records(m) - 1 if before is None else before
    assert wait_until(lambda: reload_records(m) > before, timeout, 0.1), \
        f"no reload record:\n{m.journal('vpnguard')}"


def flooding(m, args="udp {I} 9 --unconnected --interval-us 2000 --seconds 300", slice_=SLICE):
    """A flood in slice_ that the far side has seen moving."""
    t = m.t
    f = m.flood(args.format(I=t.inet_host), slice_=slice_)
    key = "tunnel" if slice_ == SLICE else "leak4"
    base = t.counters().get(key, 0)
    assert wait_until(lambda: t.counters().get(key, 0) >= base + 20, 20, 0.1), \
        f"the flood in {slice_} never arrived ({key}): {t.counters()}"
    return f


def off_tunnel_refused(m):
    """A datagram to a resolver outside the tunnel, from the slice: refused by the programs."""
    return m.in_slice([VGPROBE, "sendto", m.t.rogue_dns, "53"]) == "sent 0/1 errno EPERM"


def ms(a, b):
    return (int(b) - int(a)) / 1e3


class ProgCount:
    """The slice's program count (host bpftool) polled in a thread of its own until stop():
    the counts seen, how many polls, the largest gap between two (a window nobody looked in)."""

    def __init__(self, host_cg, every=0.02):
        self.cg, self.every = host_cg, every
        self.seen, self.polls, self.gap, self.error = set(), 0, 0.0, None
        self._end = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        last = None
        try:
            while not self._end.is_set():
                self.seen.add(len(cg_progs(self.cg)))
                now = time.monotonic()
                self.polls += 1
                self.gap = max(self.gap, now - last) if last is not None else 0.0
                last = now
                self._end.wait(self.every)
        except Exception as e:  # noqa: BLE001 - handed to stop()
            self.error = e

    def stop(self):
        self._end.set()
        self._thread.join(30)
        if self.error:
            raise self.error
        return self

    def figure(self):
        return (f"programs {'/'.join(map(str, sorted(self.seen)))} at all {self.polls} polls, "
                f"largest gap {self.gap * 1e3:.0f} ms")


def leaks(moved):
    """What arrived at the far side off the tunnel (Snapshot.expect's moved)."""
    return sum(v for k, v in moved.items() if k != "tunnel")


# -- 1. enable --now: READY with the guard attached, before docker.service -------------------------
def test_enable_now(machine, debs, figures):
    m, t = machine, machine.t
    fresh(m, debs)
    apt_install(m, debs["current"])
    # The package installs the unit without enabling it (the config must name this host's
    # tunnel first).
    assert m.systemctl("is-enabled", "vpnguard", check=False).stdout.strip() == "disabled"
    assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "inactive"
    m.put(CONF, config(t), 0o600)
    t0 = time.monotonic()
    m.systemctl("enable", "--now", "vpnguard.service")
    took = time.monotonic() - t0
    s = m.show("vpnguard.service", "Type", "ActiveState", "SubState", "StatusText",
               "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic", "Before")
    assert (s["Type"], s["ActiveState"], s["SubState"]) == ("notify", "active", "running"), s
    assert s["StatusText"] == "guarding 1 guard(s)", s
    ready = ms(s["InactiveExitTimestampMonotonic"], s["ActiveEnterTimestampMonotonic"])
    figures["enable --now: start to READY=1"] = f"{ready:.0f} ms ({took:.2f} s for the command)"
    assert_guarded(m.host_cgroup(SLICE))
    g = m.guard()
    assert g and g["state"] == "open" and g["tunnel"] == t.wg_client and g["tunnel_present"], g
    assert "docker.service" in s["Before"].split(), s["Before"]
    wants = m.run(["readlink", "/etc/systemd/system/docker.service.wants/vpnguard.service"])
    assert wants.stdout.strip().endswith("/vpnguard.service"), "not pulled in by docker.service"
    # Enforced: the slice's flood goes through the tunnel and nothing of it leaves the veth;
    # the same flood from system.slice (no guard) leaves by the veth, where it is counted.
    before = Snapshot(t)
    f = flooding(m)
    time.sleep(1)
    rep = f.stop()
    assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, rep["line"]
    moved = before.expect(far={"tunnel": f">={rep['ok'] * 9 // 10}"})
    assert off_tunnel_refused(m)
    control = Snapshot(t)
    f = flooding(m, slice_="system.slice")
    rep = f.stop()
    control.expect(far={"leak4": f">={rep['ok'] * 9 // 10}"})
    print(f"guarded flood: {moved}; unguarded control: {rep['line']}")


def test_boot_order(machine, debs, figures):
    """Enabled, the guard is READY before docker.service starts when the machine boots (a
    stand-in docker.service: the order is systemd's, from vpnguard.service's Before= and
    WantedBy=)."""
    m = machine
    running(m, debs)
    m.put("/etc/systemd/system/docker.service",
          "[Unit]\nDescription=stand-in for Docker's engine\n[Service]\n"
          "ExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n")
    m.systemctl("daemon-reload")
    m.systemctl("enable", "docker.service")
    m.reboot()
    try:
        vg = m.show("vpnguard.service", "ActiveState", "ActiveEnterTimestampMonotonic",
                    "InactiveExitTimestampMonotonic")
        dk = m.show("docker.service", "ActiveState", "InactiveExitTimestampMonotonic", "After")
        assert "vpnguard.service" in dk["After"].split(), dk["After"]
        mgr = m.run(["systemctl", "show", "--property=UserspaceTimestampMonotonic"]).stdout
        pid1 = int(mgr.strip().split("=", 1)[1])
        assert vg["ActiveState"] == "active" and dk["ActiveState"] == "active", (vg, dk)
        assert int(vg["ActiveEnterTimestampMonotonic"]) <= int(dk["InactiveExitTimestampMonotonic"]), \
            f"docker.service started before vpnguard.service was READY: {vg} {dk}"
        figures["boot to vpnguard READY=1"] = (
            f"{ms(pid1, vg['ActiveEnterTimestampMonotonic']):.0f} ms after PID 1 started "
            f"(machine running {m.boots[-1]:.1f} s after nspawn)")
        assert_guarded(m.host_cgroup(SLICE))
        assert off_tunnel_refused(m)
        # The package's own check agrees, run as an admin would, under the machine's limits.
        doc = json.loads(m.in_slice(["vpnguard-bpf", "doctor", "--json"], slice_="system.slice",
                                    user="root") or "{}")
        checks = {c["name"]: c for c in doc.get("checks", [])}
        assert doc.get("ok") is True and checks.get("systemd", {}).get("result") == "ok", doc
    finally:
        m.systemctl("disable", "--now", "docker.service", check=False)
        m.run(["rm", "-f", "/etc/systemd/system/docker.service"])
        m.systemctl("daemon-reload", check=False)


# -- 2. reload re-reads the config --------------------------------------------------------------
RELOADS = [
    # id, line added, probe (addr key, port): its line and what arrives before, then after;
    # the guard's status after
    ("dns", "dns = {R}", ("resolver", 53), ("sent 0/1 errno EPERM", {}),
     ("sent 1/1", {"tunnel": 1, "dnstun": 1}), lambda g, t: g["dns"] == [t.resolver]),
    ("allow", "allow = {L}", ("lan_host", 9), ("sent 1/1", {"tunnel": 1}),
     ("sent 1/1", {"lan": 1}), lambda g, t: g["allow"] == [t.lan_net]),
    ("refused", "bogus = 1", ("resolver", 53), ("sent 0/1 errno EPERM", {}),
     ("sent 0/1 errno EPERM", {}), lambda g, t: g["dns"] == [] and g["allow"] == []),
]


@pytest.mark.parametrize("row", RELOADS, ids=[r[0] for r in RELOADS])
def test_reload(machine, debs, row):
    m, t = machine, machine.t
    name, line, (key, port), (before_line, far_before), (after_line, far_after), check = row
    running(m, debs)
    pid = main_pid(m)
    probe = [VGPROBE, "sendto", getattr(t, key), str(port)]
    snap = Snapshot(t)
    assert m.in_slice(probe) == before_line
    snap.expect(far=far_before)
    n = reload_records(m)
    m.put(CONF, config(t, line.format(R=t.resolver, L=t.lan_net)), 0o600)
    try:
        m.systemctl("reload", "vpnguard")
        wait_reloaded(m, n)
        rec = m.run(["sh", "-c", "grep '\"reload\"' /var/log/vpnguard/events.jsonl | tail -1"])
        assert ('"refused"' in rec.stdout) == (name == "refused"), rec.stdout
        assert main_pid(m) == pid, "reload restarted the agent"
        assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "active"
        g = m.guard()
        assert check(g, t), g
        snap = Snapshot(t)
        assert m.in_slice(probe) == after_line
        snap.expect(far=far_after)
    finally:
        m.put(CONF, config(t), 0o600)
        n = reload_records(m)
        m.systemctl("reload", "vpnguard", check=False)
        wait_reloaded(m, n)


# -- 3. stop leaves enforcement in place ---------------------------------------------------------
def test_stop_keeps_enforcement(machine, debs):
    m, t = machine, machine.t
    running(m, debs)
    progs = cg_progs(m.host_cgroup(SLICE), ids=True)
    before = Snapshot(t)
    f = flooding(m)
    try:
        m.systemctl("stop", "vpnguard.service")
        assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "inactive"
        stopped = t.counters().get("tunnel", 0)
        time.sleep(3)  # the flood goes on without an agent
        assert t.counters().get("tunnel", 0) > stopped + 100, "the flood stopped with the agent"
        assert cg_progs(m.host_cgroup(SLICE), ids=True) == progs, "the programs changed"
        assert off_tunnel_refused(m)
        assert f.alive()
    finally:
        rep = f.stop()
    assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, rep["line"]
    before.expect(far={"tunnel": f">={rep['ok'] * 9 // 10}"})
    print(f"flood across the stop: {rep['line']}")


# -- 4. a killed agent is restarted; the guard never opens in between ----------------------------------
KILLS = [
    # signal, restarted by systemd (Restart=on-failure: SIGTERM is a clean exit)
    ("KILL", True),
    ("TERM", False),
]


@pytest.mark.parametrize("sig,restarts", KILLS, ids=[k[0] for k in KILLS])
def test_agent_killed(machine, debs, figures, sig, restarts):
    m, t = machine, machine.t
    running(m, debs)
    host_slice = m.host_cgroup(SLICE)
    pid = main_pid(m)
    n0 = int(m.show("vpnguard.service", "NRestarts")["NRestarts"])
    before = Snapshot(t)
    f = flooding(m)
    polled = ProgCount(host_slice)
    try:
        t0 = time.monotonic()
        m.systemctl("kill", f"--signal={sig}", "--kill-whom=main", "vpnguard.service")

        def back():
            if not restarts:
                return m.systemctl("is-active", "vpnguard", check=False).stdout.strip() != "active"
            s = m.show("vpnguard.service", "ActiveState", "MainPID")
            return s["ActiveState"] == "active" and int(s["MainPID"]) not in (0, pid)
        assert wait_until(back, 60, 0.05), m.journal("vpnguard")
        took = time.monotonic() - t0
        if restarts:
            s = m.show("vpnguard.service", "NRestarts", "ExecMainStartTimestampMonotonic",
                       "ActiveEnterTimestampMonotonic")
            assert int(s["NRestarts"]) == n0 + 1, s
            figures["SIGKILL to READY again (RestartSec=2s)"] = (
                f"{took:.2f} s; the new agent's start to READY "
                f"{ms(s['ExecMainStartTimestampMonotonic'], s['ActiveEnterTimestampMonotonic']):.0f} ms")
        else:
            time.sleep(3)  # no restart comes
            assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "inactive"
        time.sleep(1)  # and it stays as it is for a second
        polled.stop()
        assert polled.seen == {len(PROGS)}, \
            f"the slice's programs counted {polled.seen} in between ({polled.figure()})"
        assert off_tunnel_refused(m)
    finally:
        polled.stop()
        rep = f.stop()
    assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, rep["line"]
    moved = before.expect(far={"tunnel": f">={rep['ok'] * 9 // 10}"})
    figures[f"SIG{sig} under the flood"] = (
        f"sent {rep['ok']} (failed {rep['failed']}), through the tunnel {moved['tunnel']}, "
        f"off it {leaks(moved)}; {polled.figure()}")


# -- 5. upgrade under a flood; remove and purge -----------------------------------------------------
def test_upgrade_under_flood(machine, debs, figures):
    m, t = machine, machine.t
    fresh(m, debs)
    apt_install(m, debs["old"])
    m.put(CONF, config(t), 0o600)
    m.systemctl("enable", "--now", "vpnguard.service")
    assert m.run(["vpnguard-bpf", "--version"]).stdout.split()[-1] == "0.0.9"
    pid = main_pid(m)
    listener = t.spawn([t.vgprobe, "listen", "tcp", "7000"], netns=t.inet)
    try:
        assert wait_until(lambda: t.run_inet(["ss", "-Htln", "sport", "= :7000"]).stdout.strip(), 5)
        before = Snapshot(t)
        udp = flooding(m)
        tcp = m.flood(f"tcp {t.inet_host} 7000 --interval-us 2000 --seconds 300")
        time.sleep(1)
        polled = ProgCount(m.host_cgroup(SLICE))
        try:
            took = apt_install(m, debs["current"])
            time.sleep(1)
            polled.stop()
            assert udp.alive() and tcp.alive()
        finally:
            polled.stop()
            reps = {"udp": udp.stop(), "tcp": tcp.stop()}
        for kind, rep in reps.items():
            assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, f"{kind}: {rep['line']}"
        moved = before.expect(far={"tunnel": f">={reps['udp']['ok'] * 9 // 10}"})
        figures["apt-get install of the new version under the floods"] = f"{took:.1f} s"
        assert polled.seen == {len(PROGS)}, \
            f"the slice's programs counted {polled.seen} across the upgrade ({polled.figure()})"
        figures[f"upgrade 0.0.9 -> {debs['version']} under the floods"] = (
            f"udp sent {reps['udp']['ok']}, tcp writes {reps['tcp']['ok']} (reconnects "
            f"{reps['tcp'].get('reopened', 0)}), failed 0; through the tunnel {moved['tunnel']} "
            f"packets, off it {leaks(moved)}; {polled.figure()} (apt-get install and 1 s)")
    finally:
        t.stop(listener)
    assert installed_version(m) == debs["version"]
    assert m.run(["vpnguard-bpf", "--version"]).stdout.split()[-1] == debs["version"]
    s = m.show("vpnguard.service", "ActiveState", "MainPID")
    assert s["ActiveState"] == "active" and int(s["MainPID"]) != pid, s
    assert_guarded(m.host_cgroup(SLICE))


REMOVALS = [
    # apt-get command, paths gone after it, paths kept
    ("remove", ["/usr/sbin/vpnguard-bpf", "/usr/lib/systemd/system/vpnguard.service"],
     [CONF, "/var/log/vpnguard/events.jsonl"]),
    ("purge", ["/usr/sbin/vpnguard-bpf", "/usr/lib/systemd/system/vpnguard.service",
               "/etc/vpnguard", "/var/log/vpnguard", "/run/vpnguard",
               "/etc/systemd/system/multi-user.target.wants/vpnguard.service",
               "/etc/systemd/system/docker.service.wants/vpnguard.service"], []),
]


@pytest.mark.parametrize("how,gone,kept", REMOVALS, ids=[r[0] for r in REMOVALS])
def test_removal(machine, debs, how, gone, kept):
    """The package goes as docs/packaging.md says: the agent stopped, nothing detached (the
    programs hold until `vpnguard-bpf detach` or a reboot), purge takes the config, log and
    run directory and forgets the enable state."""
    m = machine
    running(m, debs)
    progs = cg_progs(m.host_cgroup(SLICE), ids=True)
    m.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", how, "-y", "-q", "vpnguard-bpf"],
          check=True, timeout=300)
    left = m.run(["sh", "-c", 'for p; do [ -e "$p" ] || [ -L "$p" ] && echo "$p"; done; true',
                  "sh"] + gone)
    assert left.stdout.split() == [], f"{how} left {left.stdout.split()}"
    missing = m.run(["sh", "-c", 'for p; do [ -e "$p" ] || echo "$p"; done; true', "sh"] + kept)
    assert missing.stdout.split() == [], f"{how} removed {missing.stdout.split()}"
    assert m.show("vpnguard.service", "LoadState")["LoadState"] == "not-found"
    assert cg_progs(m.host_cgroup(SLICE), ids=True) == progs, "removal changed the programs"
    assert off_tunnel_refused(m)
    if how == "remove":
        m.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q",
               "vpnguard-bpf"], check=True, timeout=300)


# -- 6. the man pages and the completion, as a Debian user meets them --------------------------------
def installed(m, debs):
    """The current package installed (the service as it is)."""
    if installed_version(m) != debs["version"]:
        fresh(m, debs)
        apt_install(m, debs["current"])


MAN_PAGES = [
    # what is asked for, the package's file man -w must resolve it to
    ("vpnguard-bpf", "/usr/share/man/man8/vpnguard-bpf.8.gz"),
    ("vpnguard.conf", "/usr/share/man/man5/vpnguard.conf.5.gz"),
]


@pytest.mark.parametrize("page,path", MAN_PAGES, ids=[p[0] for p in MAN_PAGES])
def test_man_page(machine, debs, page, path):
    """man-db finds the page by its name among the installed ones (the package's file) and
    renders it at MANWIDTH=80 without one groff warning (--warnings; MAN_KEEP_STDERR keeps
    what groff says)."""
    m = machine
    installed(m, debs)
    r = m.run(["man", "-w", page])
    assert (r.returncode, r.stdout.strip()) == (0, path), r.stdout + r.stderr
    owner = m.run(["dpkg-query", "-S", path]).stdout.strip()
    assert owner == f"vpnguard-bpf: {path}", owner
    r = m.run(["env", "MANWIDTH=80", "MAN_KEEP_STDERR=1", "man", "--warnings", page])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    # The whole page: its header's title is its footer's, and SEE ALSO, near the end, is there.
    assert "SEE ALSO" in lines and lines[-1].split()[-1] == lines[0].split()[0], lines[:1] + lines[-1:]


# bash as an interactive one completes: bash-completion sourced; the command has no spec yet,
# so the default one (-D, bash-completion's loader) runs and must return 124 having loaded it
# by the command's name; then the spec's function, its COMPREPLY one a line after the spec.
COMPLETE = r"""
source /usr/share/bash-completion/bash_completion || exit 90
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
fn_of() { local s=${1##*-F }; printf '%s' "${s%% *}"; }
if ! spec=$(complete -p "$1" 2>/dev/null); then
    "$(fn_of "$(complete -p -D)")" "$1" "$cur" "$prev"
    [ $? -eq 124 ] || exit 91
    spec=$(complete -p "$1") || exit 92
fi
printf '%s\n' "$spec"
"$(fn_of "$spec")" "$1" "$cur" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"""


def usage(m):
    """{command: [its options]} of `vpnguard-bpf --help` inside, read as the completion reads
    it (a line "vpnguard-bpf CMD" starts a command, its options run to the next)."""
    out = m.run(["vpnguard-bpf", "--help"], check=True).stdout
    cmds, cmd = {}, None
    for line in out.splitlines():
        head = re.match(r"\s*vpnguard-bpf\s+(\S+)", line)
        if head:
            cmd = None if head.group(1).startswith("-") else head.group(1)
            if cmd:
                cmds[cmd] = []
        for opt in re.findall(r"--[a-z][a-z-]*", line) if cmd else []:
            if opt not in cmds[cmd]:  # "--cgroup PATH [--cgroup PATH]..." is one option
                cmds[cmd].append(opt)
    return cmds


COMPLETIONS = [
    # id, words after the command (the last is the one completed), what --help says it offers
    ("commands", [""], lambda u: list(u) + ["--help", "--version"]),
    ("attach-options", ["attach", "--"], lambda u: u["attach"] + ["--help"]),
]


@pytest.mark.parametrize("words,want", [c[1:] for c in COMPLETIONS], ids=[c[0] for c in COMPLETIONS])
def test_completion(machine, debs, words, want):
    m = machine
    installed(m, debs)
    u = usage(m)
    assert "attach" in u and {"--cgroup", "--tunnel", "--config"} <= set(u["attach"]), u
    r = m.run(["bash", "--norc", "--noprofile", "-c", COMPLETE, "bash", "vpnguard-bpf"] + words)
    assert r.returncode == 0 and r.stderr == "", f"exit {r.returncode}: {r.stderr}"
    spec, *got = r.stdout.splitlines()
    assert spec == "complete -F _vpnguard_bpf vpnguard-bpf", spec
    assert sorted(got) == sorted(want(u))


# -- the hybrid layout ------------------------------------------------------------------------
@pytest.mark.parametrize("topo", ["split"], indirect=True)
def test_hybrid_layout(hybrid_machine, debs):
    """On the host's own layout (cgroup2 at /sys/fs/cgroup/unified inside, name=systemd v1),
    the config's /sys/fs/cgroup/vpnguard.slice is the slice and the guard holds."""
    m, t = hybrid_machine, hybrid_machine.t
    apt_install(m, debs["current"])
    m.put(CONF, config(t), 0o600)
    m.systemctl("enable", "--now", "vpnguard.service")
    assert m.systemctl("is-active", "vpnguard", check=False).stdout.strip() == "active"
    assert m.run(["stat", "-f", "-c", "%T", "/sys/fs/cgroup/unified"]).stdout.strip() == "cgroup2fs"
    assert_guarded(m.host_cgroup(SLICE))
    before = Snapshot(t)
    f = flooding(m)
    rep = f.stop()
    assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, rep["line"]
    before.expect(far={"tunnel": f">={rep['ok'] * 9 // 10}"})
    assert off_tunnel_refused(m)


# -- what the machine must be given for BPF --------------------------------------------------
NEEDS = [
    # nspawn's words for BPF, what the agent says when it cannot start
    ("no-bpf-syscall", ["--capability=CAP_NET_ADMIN"],
     "load BPF programs (VPNGUARD_DEBUG=1 shows the verifier log) of vpnguard.bpf.o: "
     "Operation not permitted"),
    ("no-cap-net-admin", ["--system-call-filter=bpf"], ": Operation not permitted"),
]


@pytest.mark.parametrize("topo", ["split"], indirect=True)
@pytest.mark.parametrize("name,words,error", NEEDS, ids=[n[0] for n in NEEDS])
def test_nspawn_needs(bare_machine, debs, name, words, error):
    """Without the bpf() system call in nspawn's filter (its allow-list has none) the programs
    do not load; without CAP_NET_ADMIN (--network-namespace-path does not give it) the
    steering rules are refused. Either way the agent exits 1 and nothing stays attached.
    CAP_BPF and CAP_PERFMON are not among the words: CAP_SYS_ADMIN, in nspawn's default set
    (systemd as PID 1 cannot boot without it), covers both."""
    m = bare_machine(words)
    apt_install(m, debs["current"])
    m.put(CONF, config(m.t), 0o600)
    r = m.systemctl("start", "vpnguard.service", check=False)
    assert r.returncode != 0, "vpnguard.service started"
    journal = m.journal("vpnguard")
    assert error in journal, journal
    if name == "no-cap-net-admin":
        assert "route fwmark" in journal, journal
    s = m.show("vpnguard.service", "Result", "SubState")
    # Restart=on-failure tries again every 2 s: failed, or waiting for the next try.
    assert s["Result"] == "exit-code" and s["SubState"] in ("failed", "auto-restart"), s
    host_slice = m.host_cgroup(SLICE)
    assert not os.path.isdir(host_slice) or cg_progs(host_slice) == [], \
        "a failed attach left programs on the slice"
