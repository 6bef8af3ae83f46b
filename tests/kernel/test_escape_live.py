"""A process names itself to forge log lines: `events` and `scan` show its comm escaped.

Hardening item 11 (log-viewer injection), end to end with real processes: a comm (15 bytes
a process chooses) holding a newline, CR, ESC sequences, BEL, DEL, C1 controls, bidi and
line-separator characters or bytes that are not UTF-8. Two ways to get it, both real:

  exec   a copy of build/vgprobe whose file name is those bytes (exec makes the basename
         the comm), doing vgprobe's own refused send;
  prctl  python3 calling prctl(PR_SET_NAME) on itself, then making the send with socket().

Inside a gateway guard (test_cli_events.py's policy) the process makes sends the guard
refuses: UDP to the rogue resolver (reason dns) and to IPv6 (reason ipv6), each counted as
one denial with nothing at the far side (vgworld's Attempt). Then

  events          one line per record, valid UTF-8, no control or reordering character
                  (vg_text_escape's set), the comm in its escaped form (the hand-written
                  column SHOWN: an oracle apart from the C code);
  events --json   no byte below 0x20 but the line ends, and the record carries the real comm
                  (bytes that are not UTF-8 pass through: see json_records);
  scan            the same process kept alive (root: CAP_NET_RAW) is one FOUND net_raw line
                  with its comm escaped; `scan --json` has the real comm;
  agent           with an agent running, events reads its log: the blocked record and the
                  agent's own scan finding of such a process (its "comm=") are escaped, and
                  --json prints the log byte for byte.

Run one case: pytest-3 tests/kernel/test_escape_live.py -k 'scan and newline'
"""
import itertools
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from vgcli import PATIENCE, cli_world, events_guard, guard
from vgproc import end_popen, wait_until, wrap_argv
from vgworld import PY, Attempt, cg_rel, run_vg, words

# id, the comm (at most 15 bytes: all of it is the comm), how a human line must show it.
NAMES = [
    ("newline-esc", b"x\nOK\x1b[2J", r"x\nOK\x1b[2J"),
    ("cr-osc-bel-del", b"\r\x1b]0;pwn\x07\x7f", r"\r\x1b]0;pwn\x07\x7f"),
    ("c1-csi-nel", b"c1\xc2\x9b2J\xc2\x85", r"c1\xc2\x9b2J\xc2\x85"),
    ("bidi-linesep", b"\xe2\x80\xaegpj\xe2\x80\xa8x", r"\xe2\x80\xaegpj\xe2\x80\xa8x"),
    ("8bit-tab-backslash", b"\tq\x9b31m\xff\\", r"\tq\x9b31m\xff\\"),
    ("utf8-kept", b"caf\xc3\xa9\x1b[0m", "caf\u00e9" + r"\x1b[0m"),
]
NAME_IDS = [n[0] for n in NAMES]
SETTERS = ("exec", "prctl")
_holders = itertools.count()

# What a line for a person must not hold (vg_text_escape escapes all of it).
UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

# The prctl way: name itself, then one refused send or (hold) stay until SIGTERM.
HELPER = r'''
import ctypes, errno, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
name = bytes.fromhex(sys.argv[2])
if libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0) != 0:   # PR_SET_NAME
    print("errno prctl", flush=True)
    sys.exit(2)
if sys.argv[1] == "hold":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    open(sys.argv[3], "w").close()
    while True:
        time.sleep(60)
addr, port = sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"x", (addr, port))
except OSError as e:
    print("sent 0/1 errno " + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    sys.exit(1)
print("sent 1/1", flush=True)
'''


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        w.helper = os.path.join(w.t.dir, "vgnamed.py")
        with open(w.helper, "w") as f:
            f.write(HELPER)
        w.copies = os.path.join(w.t.dir, "named")
        os.mkdir(w.copies, 0o755)
        yield w


@pytest.fixture
def gw(w):
    with events_guard(w) as g:
        yield g


def named_argv(w, setter, name, *args):
    """The command that runs as comm `name`: a copy of vgprobe so named (its arguments), or the
    helper (its mode and arguments). As str: os.fsdecode keeps every byte for exec."""
    if setter == "exec":
        path = os.path.join(os.fsencode(w.copies), name)
        if not os.path.exists(path):
            shutil.copy(w.t.vgprobe, path)
            os.chmod(path, 0o755)
        return [os.fsdecode(path)] + [str(a) for a in args]
    return [PY, w.helper, args[0], name.hex()] + [str(a) for a in args[1:]]


def refused(w, g, setter, name, dst, port, reason):
    """One UDP send to dst:port as comm `name` in g's cgroup in HOME, as root: refused by the
    guard (EPERM, one denial of reason, nothing at the far side). Its PID."""
    t = w.t
    mode = ["sendto"] if setter == "exec" else ["send"]
    argv = wrap_argv(named_argv(w, setter, name, *mode, words(t, dst), port), g.cg, t.home)
    before = Attempt(w, w.vg, g.gid)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=30)
    finally:
        end_popen(p)
    line = (out.decode(errors="replace").strip().splitlines() or [""])[-1]
    assert (line, p.returncode) == ("sent 0/1 errno EPERM", 1), (line, p.returncode, err)
    before.expect(denied={reason: 1})
    return p.pid


@pytest.fixture
def holder(w, gw):
    """Start one process as comm `name` in gw's cgroup in HOME, as root (so it holds
    CAP_NET_RAW), staying until the case ends: holder(setter, name) -> its PID."""
    t = w.t
    procs = []

    def start(setter, name):
        n = next(_holders)
        ready = os.path.join(t.dir, f"holder.{n}.ready")
        if setter == "exec":
            argv = named_argv(w, setter, name, "listen", "udp", 40000 + n, "--ready-file", ready)
        else:
            argv = named_argv(w, setter, name, "hold", ready)
        p = t.spawn(argv, cg=gw.cg, netns=t.home, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
        procs.append(p)
        assert wait_until(lambda: os.path.exists(ready), PATIENCE, 0.05), "the holder did not start"
        with open(f"/proc/{p.pid}/comm", "rb") as f:
            assert f.read() == name + b"\n", "the holder's comm is not the name"
        return p.pid

    try:
        yield start
    finally:
        for p in procs:
            t.stop(p, signal.SIGTERM)


def vg_bytes(vg, *args):
    """vpnguard-bpf ARGS as root, its output as bytes (a str would hide bytes that are not UTF-8)."""
    return subprocess.run([vg] + list(args), capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def human_lines(out):
    """The lines of a human output: valid UTF-8, nothing UNSHOWN in any line."""
    assert out == b"" or out.endswith(b"\n"), f"output not ended by a newline: {out[-80:]!r}"
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"a byte that is not UTF-8 reached the terminal: {e}: {out!r}")
    lines = text.split("\n")[:-1]
    bad = [ln for ln in lines if UNSHOWN.search(ln)]
    assert not bad, f"raw control characters in {len(bad)} line(s): {bad[:3]!r}"
    return lines


def json_records(out):
    """The records of a JSON-lines output: no byte below 0x20 but the line ends, every line one
    object. Bytes that are not UTF-8 (a comm may hold any) are json-c's to pass through: they
    are kept as surrogates, so the comm compares with the real bytes."""
    raw = re.findall(rb"[\x00-\x09\x0b-\x1f]", out)
    assert not raw, f"raw control bytes {raw[:5]!r} in the JSON: {out[:300]!r}"
    recs = []
    for line in out.split(b"\n"):
        if line:
            rec = json.loads(line.decode("utf-8", "surrogateescape"))
            assert isinstance(rec, dict), line
            recs.append(rec)
    return recs


def real(name):
    return name.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("setter", SETTERS)
@pytest.mark.parametrize("ident,name,shown", NAMES, ids=NAME_IDS)
def test_events_ring(w, gw, setter, ident, name, shown):
    """No agent: events reads the ring buffer (and drains it), so one denial for each read."""
    t = w.t
    pid = refused(w, gw, setter, name, "{D}", 53, "dns")
    r = vg_bytes(w.vg, "events")
    assert (r.returncode, r.stderr) == (0, b""), r
    lines = human_lines(r.stdout)
    assert len(lines) == 1, f"one record, {len(lines)} lines: {lines!r}"
    want = (rf"BLOCKED +udp +{re.escape(t.rogue_dns)}:53 +dns +by {re.escape(shown)} "
            rf"\(pid {pid}\) in {re.escape(cg_rel(t.cg2, gw.cg))}, hook sendmsg4")
    assert re.search(want, lines[0]), f"{lines[0]!r}\nwant /{want}/"

    pid = refused(w, gw, setter, name, "{I6}", 9, "ipv6")
    r = vg_bytes(w.vg, "events", "--json")
    assert (r.returncode, r.stderr) == (0, b""), r
    recs = json_records(r.stdout)
    assert len(recs) == 1, recs
    got = tuple(recs[0].get(k) for k in ("pid", "reason", "hook", "dst", "comm"))
    assert got == (pid, "ipv6", "sendmsg6", t.inet_host6, real(name)), recs[0]


@pytest.mark.parametrize("setter", SETTERS)
@pytest.mark.parametrize("ident,name,shown", NAMES, ids=NAME_IDS)
def test_scan(w, gw, holder, setter, ident, name, shown):
    """A guarded root process so named: one net_raw finding, its line escaped, its JSON real."""
    t = w.t
    pid = holder(setter, name)
    r = vg_bytes(w.vg, "scan")
    assert r.returncode == 3, f"scan exit {r.returncode}: {r.stdout!r} {r.stderr!r}"
    lines = human_lines(r.stdout)
    found = [ln for ln in lines if ln.startswith("FOUND ")]
    want = (f"FOUND net_raw pid {pid} ({shown}) in {cg_rel(t.cg2, gw.cg)}: holds CAP_NET_RAW "
            f"(effective): packet sockets bypass the guard; drop it (cap_drop: [NET_RAW])")
    assert found == [want], f"{found!r}\nwant {want!r}"
    assert lines[0] == "scanned 1 guard, 1 process in them" and lines[-1] == "1 finding", lines
    assert len(lines) == 3, lines

    r = vg_bytes(w.vg, "scan", "--json")
    assert r.returncode == 3, r
    recs = json_records(r.stdout)
    assert len(recs) == 1, recs
    got = [(f.get("kind"), f.get("pid"), f.get("comm")) for f in recs[0]["findings"]]
    assert got == [("net_raw", pid, real(name))], recs[0]


# The agent's cases: fewer (each starts an agent), both ways of naming.
AGENT = [("newline-esc", "exec"), ("8bit-tab-backslash", "prctl"), ("cr-osc-bel-del", "prctl")]


@pytest.mark.parametrize("ident,setter", AGENT, ids=[f"{i}-{s}" for i, s in AGENT])
def test_events_agent_log(w, gw, holder, ident, setter):
    """An agent runs: events reads its log. The agent's start-up scan logs the named holder in
    gw, a refused send in its own guard logs a blocked record; both lines escaped, --json is
    the log itself, with the real comm."""
    t = w.t
    _, name, shown = NAMES[NAME_IDS.index(ident)]
    held = holder(setter, name)
    log = os.path.join(t.dir, f"agent.{ident}.{setter}", "events.jsonl")
    with guard(w, "ev", "--gateway", f"{t.inet_host}:1080", "--dns", t.resolver, agent=True,
               log=log) as ev:
        def logged(pid, event):
            return [x for x in ev.events() if x.get("pid") == pid and x.get("event") == event]
        assert wait_until(lambda: logged(held, "scan"), 15, 0.1), \
            f"the agent's scan did not log pid {held}: {ev.events()[-5:]}"
        pid = refused(w, ev, setter, name, "{D}", 53, "dns")
        assert wait_until(lambda: logged(pid, "blocked"), PATIENCE, 0.1), f"pid {pid} not logged"
        with open(log, "rb") as f:
            text = f.read()

        r = vg_bytes(w.vg, "events", "--json")
        assert (r.returncode, r.stdout) == (0, text), "events --json is not the log"
        recs = json_records(text)
        assert [x["comm"] for x in recs if x.get("pid") in (held, pid)] == [real(name)] * 2, \
            [x for x in recs if x.get("pid") in (held, pid)]

        r = vg_bytes(w.vg, "events")
        assert r.returncode == 0, r
        lines = human_lines(r.stdout)
        assert len(lines) == len(text.splitlines()), (lines, text)
        blocked = [ln for ln in lines if f"(pid {pid})" in ln]
        want = (rf"BLOCKED +udp +{re.escape(t.rogue_dns)}:53 +dns +by {re.escape(shown)} "
                rf"\(pid {pid}\) in {re.escape(cg_rel(t.cg2, ev.cg))}, hook sendmsg4")
        assert len(blocked) == 1 and re.search(want, blocked[0]), f"{blocked!r}\nwant /{want}/"
        scans = [ln for ln in lines if f" scan reason=net_raw: pid {held} " in ln]
        want = f"(comm={shown}) in {cg_rel(t.cg2, gw.cg)} escapes its guard"
        assert len(scans) == 1 and want in scans[0], f"{scans!r}\nwant {want!r}"
        assert b"\x1b" not in ev.stderr().encode(errors="surrogateescape"), \
            f"raw ESC in the agent's output: {ev.stderr()[-500:]!r}"
