"""Fixtures of the Docker suite (tests/conftest.py's vg, own_paths and kernel_lock apply too).

  engine       (session) a private dockerd of Debian's docker.io, vfs storage, its image imported
               from a tarball, never pulled (tests/lib/vgdocker.py's Engine); an engine that
               cannot start FAILS every test with its reason and the daemon's last log lines
  docker_lock  (module, automatic) the kernel tests' lock (every guard of the session shares
               one pin root), held for a whole file, or from the first file to the last when
               the session runs Docker tests only
  lab          (session) the topology (tests/lib/vgtopo.py): INET, its WireGuard server and
               counters; HOME parked between tests
  world        a DockerWorld (tests/docker/dockerworld.py): the test's own VPN container,
               HOME moved into its namespace (the wire and the tunnel built there), the
               cgroup parents; all the test adds is removed after it (containers by ID)
  bare_world   the same without the wire and the tunnel
  vgdockerev   build/vgdockerev, vpnguard-bpf's own client of the engine's event stream
  note         a line for the terminal, passed or not (the measured figures)
"""
import os
import subprocess

import pytest

from dockerworld import DockerWorld
from vgdocker import ContainerTopology, Engine, EngineError
from vgguard import kernel_lock_held
from vgworld import REPO

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def engine():
    e = Engine()
    try:
        e.up()
    except EngineError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield e
    finally:
        e.down()


def _say(config, msg):
    """A line on the terminal, past the capture of the test's output."""
    print(msg)
    pm = config.pluginmanager
    tr, cap = pm.getplugin("terminalreporter"), pm.getplugin("capturemanager")
    if tr is not None and cap is not None:
        with cap.global_and_fixture_disabled():
            tr.write_line(f"# {msg}")


class _Lock:
    def __init__(self, config):
        self.cm, self.config = None, config

    def take(self):
        if self.cm is None:
            cm = kernel_lock_held()
            try:
                waited = cm.__enter__()
            except TimeoutError as e:
                pytest.fail(str(e), pytrace=False)
            self.cm = cm
            if waited > 1:
                _say(self.config, f"docker_lock: waited {waited:.1f} s for the kernel tests' lock")

    def drop(self):
        if self.cm is not None:
            self.cm.__exit__(None, None, None)
            self.cm = None


@pytest.fixture(scope="session")
def _lock(request):
    lk = _Lock(request.config)
    # A session of Docker tests only holds the lock from its first file to its last, as the
    # bash suite did; one with other files lets go after each file (their tests take it too).
    lk.keep = all(str(i.path).startswith(HERE + os.sep) for i in request.session.items)
    try:
        yield lk
    finally:
        lk.drop()


@pytest.fixture(scope="module", autouse=True)
def docker_lock(_lock):
    _lock.take()
    yield
    if not _lock.keep:
        _lock.drop()


@pytest.fixture(scope="session")
def lab(engine):
    with ContainerTopology() as t:
        try:
            yield t
        finally:
            engine.reap()  # the last test's containers, before the cgroups they were in


@pytest.fixture
def world(engine, lab, vg):
    with DockerWorld(engine, lab, vg) as w:
        yield w


@pytest.fixture
def bare_world(engine, lab, vg):
    """A world without the tunnel: HOME stays parked (for what is refused before any tunnel
    is looked at: a second or so less a test)."""
    with DockerWorld(engine, lab, vg, tunnel=False) as w:
        yield w


@pytest.fixture(scope="session")
def vgdockerev():
    path = os.path.join(REPO, "build", "vgdockerev")
    if not os.access(path, os.X_OK):
        r = subprocess.run(["make", "-s", "-C", REPO, "build/vgdockerev"], capture_output=True,
                           text=True)
        if r.returncode != 0 or not os.access(path, os.X_OK):
            pytest.fail(f"make build/vgdockerev failed:\n{r.stderr[-2000:]}", pytrace=False)
    return path


@pytest.fixture
def note(request):
    return lambda msg: _say(request.config, f"{request.node.name}: {msg}")
