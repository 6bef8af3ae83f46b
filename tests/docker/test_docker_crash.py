"""dockerd SIGKILLed and started again under a guarded, flooding client: the guard holds, the
agent tells the engine's absence and return, and `scan` finds the container the restarted
engine no longer knows (a ghost).

The world is tests/docker/test_docker_slice.py's (tests/docker/dockerworld.py): the VPN
container holds the tunnel; the client, in the guarded slice and the VPN container's network
namespace, floods the Internet host (through the tunnel) and the LAN host (without the guard
it would leave by the fallback path) through the whole run; the agent owns the slice's guard (--tunnel-container: it
follows the engine) and guards a second container by name, whose starts it follows, and
alerts to a webhook sink on loopback.

Debian's dockerd starts its own containerd with a parent-death signal: a SIGKILLed dockerd
takes containerd with it, the shims and the containers under them run on. Started again
without live-restore, dockerd stops every container it finds running (10 s of SIGTERM, then
SIGKILL) before it answers; with `"live-restore": true` (what Engine.restart() writes) it
keeps them. A third container of the slice has its state moved out of the engine's data root
while the engine is down (Engine.forget): the restarted engine does not list it, its process
runs on in the slice, and `scan` calls it a ghost; the test ends its processes and shim by PID
and removes its cgroup (Engine.end_ghost).

Checked: containerd gone, the shims and containers alive, the same init PIDs after the
restart; zero packets off the tunnel at the far side, both floods running to the end; `scan --json`
while the engine is gone still counts the guarded processes and notes that ghosts were not
looked for (exit 0); one engine_gone and one engine_back record (and alert), nothing between
them; a start before the crash is not handled again, one after the return is handled once.
Measured: engine answering again -> the engine_back record.

Run it: cd tests && pytest-3 -q -p no:cacheprovider docker/test_docker_crash.py
"""
import json
import os
import time

from vgagent import Hook, rec_time
from vgdocker import _cgroup_pids, _ppid
from vgproc import pid_alive, wait_until
from vgworld import Attempt, gid_of


def docker_recs(a, action=None):
    return [r for r in a.events("docker") if action is None or r.get("action") == action]


def starts(a, name):
    return [r for r in docker_recs(a, "start") if r.get("container") == name]


def applied(a, name):
    return sum(1 for r in starts(a, name) if r.get("reload") == "applied")


def scan(w, *more):
    r = w.vg_run("scan", *more)
    return r, (json.loads(r.stdout) if "--json" in more and r.stdout.strip() else None)


def guarded_procs(w, res):
    """The processes in the cgroups of the guards a scan reported, as the kernel lists them."""
    return sum(len(_cgroup_pids(w.t.cg2 + g)) for g in res["guards"])


def comms(cg):
    out = []
    for pid in _cgroup_pids(cg):
        try:
            with open(f"/proc/{pid}/comm") as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out


def flood(c, host, port, interval_us, *more):
    c.exec("vgprobe", "flood", "udp", host, str(port), "--seconds", "90", "--interval-us",
           str(interval_us), *more, detach=True)


def test_guard_agent_and_scan_through_a_dockerd_crash(world, vg, engine, note):
    w, t, e = world, world.t, engine
    hook = Hook(t, f"hook.{w.s}").start()
    c = w.client()
    x = w.client("vgnamed", parent=w.byname_parent)
    ghost = w.client("vgghost")
    a = w.agent("--cgroup", w.slice, "--tunnel", t.wg_client, "--tunnel-container", w.vpn.name,
                "--container", x.name, "--webhook", hook.url)
    x.restart()  # a start followed before the crash: the restarted engine must not bring it back
    assert wait_until(lambda: applied(a, x.name) == 1, 20, 0.1), docker_recs(a)
    e.quiesce()  # nothing of the engine's in flight (the next test's VPN container is made)
    at = Attempt(w.world, vg, gid_of(w.slice))
    flood(c, t.inet_host, 7030, 1000)
    flood(c, t.lan_host, 7031, 10000, "--unconnected")
    assert wait_until(lambda: at.moved().get("tunnel", 0) > 100, 10, 0.1), "no flood"
    ghost_pid, ghost_cg, figs = ghost.pid, ghost.cgroup, {}
    try:
        _crash(w, e, a, hook, c, x, ghost, at, figs)
    finally:
        if e.proc.poll() is not None:  # the session's other tests need their engine
            e.restart(live_restore=True)
        ended = e.end_ghost(ghost.id, ghost_pid) if figs.get("forgotten") else []
    assert ghost_pid in ended and not pid_alive(ghost_pid), ended
    assert not os.path.isdir(t.cg2 + ghost_cg), f"{ghost_cg} is left"
    r, _ = scan(w, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    note(f"CRASH engine_gone {figs['gone_after']:.2f} s after the SIGKILL; engine_back "
         f"{figs['back_after']:.2f} s after the engine answered again (gone {figs['gone_s']:.1f} s; "
         f"the agent looks its containers up again before it writes the record)")


def _crash(w, e, a, hook, c, x, ghost, at, figs):
    init, shim, ghost_pid = c.pid, _ppid(c.pid), ghost.pid
    t_kill = time.time()
    containerd = e.kill()
    # Debian's dockerd: containerd goes with it, the shims and their containers stay.
    assert containerd and not pid_alive(containerd), f"containerd {containerd} still runs"
    assert all(map(pid_alive, (init, shim, ghost_pid))), "a container or shim went with dockerd"
    assert wait_until(lambda: docker_recs(a, "engine_gone"), 10, 0.05), docker_recs(a)
    gone = docker_recs(a, "engine_gone")[0]
    figs["gone_after"] = rec_time(gone) - t_kill
    assert gone.get("error"), gone
    # The engine gone: scan still sees every guarded process, and says it could not ask it.
    r, res = scan(w, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert res["findings"] == [], res
    assert res["processes"] == guarded_procs(w, res) and res["processes"] >= 4, res
    assert res.get("note", "").startswith("ghosts not looked for: docker: "), res
    assert res["engine"]["socket"] == e.sock and res["engine"].get("error"), res
    r, _ = scan(w)
    assert r.returncode == 0 and "\nnote: ghosts not looked for: " in r.stdout, r.stdout
    e.forget(ghost.id)
    figs["forgotten"] = True
    # Asked every second meanwhile: nothing more is written while it stays gone.
    time.sleep(max(0.0, 3.5 - (time.time() - rec_time(gone))))
    assert docker_recs(a)[-1] == gone, docker_recs(a)
    t_up = e.restart(live_restore=True)
    assert wait_until(lambda: docker_recs(a, "engine_back"), 15, 0.02), docker_recs(a)
    back = docker_recs(a, "engine_back")[0]
    figs["back_after"], figs["gone_s"] = rec_time(back) - t_up, back.get("gone_s", 0)
    recs = docker_recs(a)
    assert recs[recs.index(gone) + 1] == back, recs
    assert len(docker_recs(a, "engine_gone")) == 1 and len(docker_recs(a, "engine_back")) == 1
    assert back.get("reload") == "applied" and back["gone_s"] > 3, back
    # live-restore: the same containers, the same processes.
    assert e.inspect(c.id, "{{.State.Running}} {{.State.Pid}}") == f"true {init}"
    assert pid_alive(shim)
    hook.wait(lambda r, b: b.get("action") == "engine_back")
    posts = [b for _, b in hook.posts(lambda r, b: b.get("event") == "docker")]
    assert [b.get("action") for b in posts] == ["engine_gone", "engine_back"], posts
    assert "the Docker engine is gone" in posts[0].get("message", ""), posts[0]
    assert "the Docker engine is back" in posts[1].get("message", ""), posts[1]
    # Following resumed from the last event seen: the start before the crash stays one.
    assert len(starts(a, x.name)) == 1, starts(a, x.name)
    x.restart()
    assert wait_until(lambda: applied(a, x.name) == 2, 20, 0.1), docker_recs(a)
    w.t.settle(2)
    assert len(starts(a, x.name)) == 2, starts(a, x.name)
    # The engine back, the container it forgot is a ghost; the client is no such thing.
    r, res = scan(w, "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    assert {(f["kind"], f["pid"]) for f in res["findings"]} == {("ghost", ghost_pid)}, res
    assert res["findings"][0]["container_id"] == ghost.id, res
    assert "note" not in res and res["engine"]["running"] >= 3, res
    r, _ = scan(w)
    assert r.returncode == 3 and f"FOUND ghost   pid {ghost_pid} " in r.stdout, r.stdout
    # Zero packets off the tunnel through it all, both floods still running.
    at.expect(far={"tunnel": ">=1000", "mld": "*"}, denied="*")
    assert comms(w.t.cg2 + c.cgroup).count("vgprobe") == 2, comms(w.t.cg2 + c.cgroup)
