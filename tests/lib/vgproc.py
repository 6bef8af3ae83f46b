"""vgproc - processes, cgroups and network namespaces for the vpnguard-bpf tests.

The process discipline of tests/lib/topology.sh, for Python: a process joins its
cgroup BEFORE `ip netns exec` (which remounts /sys, so cgroup.procs can no
longer be written) and execs all the way, so a Popen's pid is the command
itself; everything is ended by PID (SIGTERM, SIGKILL after a grace), never by
name; a test cgroup is emptied member by member, deepest first.
"""
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import threading
import time

_CLONE_NEWNET = 0x40000000


def cgroup2_mount():
    """The cgroup v2 mount point, from /proc/self/mounts (never hard-coded)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    return None


def pid_alive(pid):
    """Alive and not a zombie (a zombie still answers kill -0)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return st not in ("Z", "X")


def wait_until(pred, timeout, interval=0.05):
    """Poll pred until it is true or timeout seconds have passed; its last answer."""
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return bool(pred())
        time.sleep(interval)


def end_pid(pid, sig=signal.SIGTERM, comm=None, grace=3.0):
    """End one process by PID: sig, SIGKILL after grace. comm guards a recycled PID."""
    if not pid:
        return
    if comm is not None:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != comm:
                    return
        except OSError:
            return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not pid_alive(pid), grace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(lambda: not pid_alive(pid), 2)


def end_popen(p, sig=signal.SIGTERM, grace=3.0):
    """End a child we started (Popen never signals a PID it has reaped)."""
    if p is None:
        return None
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            return p.wait(5)
        except subprocess.TimeoutExpired:
            return None


def netns_socket(ns_path, family=socket.AF_INET, type=socket.SOCK_STREAM):
    """A socket made in another network namespace: a short-lived thread enters
    it (setns is per thread) and makes the socket, which keeps its namespace."""
    out = {}

    def body():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(ns_path, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns " + ns_path)
            finally:
                os.close(fd)
            out["s"] = socket.socket(family, type)
        except BaseException as e:  # handed to the caller
            out["e"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["s"]


def wrap_argv(argv, cg=None, netns=None, user=None):
    """argv run in cgroup cg, then netns netns, then as user (every privilege
    dropped: setpriv --reuid --regid --clear-groups --inh-caps=-all)."""
    argv = [str(a) for a in argv]
    if user is not None:
        pw = pwd.getpwnam(user)
        argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                "--clear-groups", "--inh-caps=-all", "--"] + argv
    if netns is not None:
        argv = ["ip", "netns", "exec", netns] + argv
    if cg is not None:
        # The shell moves itself into the cgroup, then execs: one PID all the way.
        argv = ["sh", "-c", 'echo $$ >"$0/cgroup.procs" || exit 125; exec "$@"',
                cg.rstrip("/")] + argv
    return argv


def arrived(pid, cg2, cg=None, netns=None):
    """pid is in cgroup cg (a path under the cgroup2 mount cg2) and netns NAME."""
    try:
        if cg is not None:
            want = "0::" + cg.rstrip("/")[len(cg2):]
            with open(f"/proc/{pid}/cgroup") as f:
                if want not in f.read().splitlines():
                    return False
        if netns is not None:
            want = f"net:[{os.stat(f'/run/netns/{netns}').st_ino}]"
            if os.readlink(f"/proc/{pid}/ns/net") != want:
                return False
    except OSError:
        return False
    return True


def rmdir_quiet(d):
    """rmdir that counts a directory already gone as removed; False while it cannot go."""
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def cg_empty(cg, reap=None):
    """Everything in a test cgroup was started by the test: end each member by
    PID, SIGTERM first, SIGKILL for what is still there after a second."""
    for n in range(100):
        try:
            with open(os.path.join(cg, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return
        if not pids:
            break
        sig = signal.SIGTERM if n < 20 else signal.SIGKILL
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        if reap:
            reap()


def cg_remove(path, root, reap=None):
    """Empty and remove path and every cgroup below it, deepest first; path must
    be root or below it (only ever our own test cgroups). Several rounds: a
    process may join while we work, and rmdir says EBUSY until dying tasks are gone."""
    path = path.rstrip("/")
    if not root or not (path == root or path.startswith(root + "/")):
        raise ValueError(f"{path} is not under {root}")
    for _ in range(5):
        if not os.path.isdir(path):
            return True
        for d in sorted((d for d, _, _ in os.walk(path)), key=len, reverse=True):
            cg_empty(d, reap)
            wait_until(lambda d=d: rmdir_quiet(d), 0.5)
    return not os.path.isdir(path)


def netns_remove(ns):
    """End the processes in namespace ns (ours by definition) by PID, then delete it."""
    path = f"/run/netns/{ns}"
    if not os.path.exists(path):
        return
    try:
        want = f"net:[{os.stat(path).st_ino}]"
    except OSError:
        want = None
    if want:
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                try:
                    if os.readlink(f"/proc/{d}/ns/net") == want:
                        end_pid(int(d))
                except OSError:
                    pass
    subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
