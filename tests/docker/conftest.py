"""Fixtures of the Docker suite (tests/conftest.py's vg, own_paths and kernel_lock apply too).

  engine       (session) a private dockerd of Debian's docker.io, vfs storage, its image imported
               from a tarball, never pulled (tests/lib/vgdocker.py's Engine); an engine that
               cannot start FAILS every test with its reason and the daemon's last log lines
  docker_lock  (module, automatic) the kernel tests' lock, held for a whole file: every guard
               of the session shares one pin root, and a file's tests run back to back
  lab          (session) the topology (tests/lib/vgtopo.py): INET, its WireGuard server and
               counters; HOME parked between tests
  world        a DockerWorld: the test's own VPN container, HOME moved into its namespace
               (the wire and the tunnel built there), the cgroup parents; everything the
               test adds is removed after it (containers by ID)
  vgdockerev   build/vgdockerev, vpnguard-bpf's own client of the engine's event stream
  note         a line for the terminal, passed or not (the measured figures)
"""
import os
import subprocess

import pytest

from vgdocker import ContainerTopology, DockerWorld, Engine, EngineError
from vgguard import kernel_lock_held
from vgworld import REPO


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


@pytest.fixture(scope="module", autouse=True)
def docker_lock():
    try:
        with kernel_lock_held() as waited:
            if waited > 1:
                print(f"docker_lock: waited {waited:.1f} s for the kernel tests' lock")
            yield
    except TimeoutError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def lab():
    with ContainerTopology() as t:
        yield t


@pytest.fixture
def world(engine, lab, vg):
    with DockerWorld(engine, lab, vg) as w:
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
    pm = request.config.pluginmanager
    tr, cap = pm.getplugin("terminalreporter"), pm.getplugin("capturemanager")

    def say(msg):
        print(msg)
        if tr is not None and cap is not None:
            with cap.global_and_fixture_disabled():  # past the capture of the test's output
                tr.write_line(f"# {request.node.name}: {msg}")
    return say
