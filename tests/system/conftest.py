"""Fixtures of the system test (tests/system, docs/system-test.md): vpnguard-bpf's .deb in a
Debian 12 booted with systemd as PID 1.

  debs      make deb and make deb DEB_VERSION=0.0.9 of this tree (vgsystem.built_debs)
  root_tar  the debootstrapped Debian 12 with the package's Depends and Recommends, cached
  world     the session's vgtopo.Topology (routing "split": without the guard's steering
            nothing but the tunnel's own /24 goes through it), under the kernel tests' lock
  machine   the Machine booted in the world's HOME, the packages in /root/debs
  hybrid_machine, bare_machine(nspawn args)
            a machine of the test's own in a topology of its own (the topo fixture): on the
            host's hybrid cgroup layout, or given less than NSPAWN_BPF
  figures   the measured times and the floods' counts (sent, through the tunnel, off it, the
            program-count polls), printed in pytest's terminal summary at the end of the run

tests/conftest.py applies too (root, tools, the session's own pin root, vg: make all,
which builds build/vgprobe, the machine's flood tool). What cannot run fails.
"""
import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from vgguard import kernel_lock_held  # noqa: E402
from vgsystem import NSPAWN_BPF, Machine, MachineError, built_debs, cached_root, runtime_packages  # noqa: E402
from vgtopo import Topology  # noqa: E402

SYSTEM_TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb", "tar")
FIGURES = {}


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "system test figures")
        for k, v in FIGURES.items():
            terminalreporter.write_line(f"{k}: {v}")


@pytest.fixture(scope="session")
def figures():
    return FIGURES


@pytest.fixture(scope="session")
def debs(vg):
    import shutil
    missing = [t for t in SYSTEM_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools: {' '.join(missing)} (apt-get install debootstrap "
                    f"systemd-container)", pytrace=False)
    try:
        d = built_debs()
    except MachineError as e:
        pytest.fail(str(e), pytrace=False)
    if d["seconds"]:
        FIGURES["make deb (both versions)"] = f"{d['seconds']:.0f} s"
    return d


@pytest.fixture(scope="session")
def root_tar(debs):
    pkgs = sorted(set(runtime_packages(debs["current"])) | set(runtime_packages(debs["old"])))
    try:
        tar, seconds = cached_root(pkgs)
    except MachineError as e:
        pytest.fail(str(e), pytrace=False)
    FIGURES["root tree"] = f"{os.path.basename(tar)} " + (
        f"(debootstrapped in {seconds:.0f} s)" if seconds else "(cached)")
    return tar


@pytest.fixture(scope="session")
def system_lock(root_tar):
    """The kernel tests' lock for the whole session (its guards and floods load the machine
    other suites time on); taken once the slow downloads are done."""
    try:
        with kernel_lock_held() as waited:
            if waited > 1:
                FIGURES["waited for the kernel tests' lock"] = f"{waited:.0f} s"
            t0 = time.monotonic()
            try:
                yield
            finally:
                FIGURES["under the lock (worlds, boots, cases, power-offs)"] = \
                    f"{time.monotonic() - t0:.0f} s"
    except TimeoutError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def world(system_lock):
    with Topology(routing="split") as t:
        yield t


def _boot(root_tar, debs, topo, layout, nspawn_bpf=NSPAWN_BPF):
    m = Machine(root_tar, topo, layout, nspawn_bpf)
    try:
        m.unpack()
        for kind in ("current", "old"):
            m.copy_in(debs[kind], f"/root/debs/{os.path.basename(debs[kind])}")
        m.boot()
    except BaseException as e:
        m.remove()
        if isinstance(e, MachineError):
            pytest.fail(str(e), pytrace=False)
        raise
    if nspawn_bpf == NSPAWN_BPF:
        FIGURES[f"boot to a running system ({layout})"] = f"{m.boots[0]:.1f} s"
    return m


@pytest.fixture(scope="session")
def machine(root_tar, debs, world):
    m = _boot(root_tar, debs, world, "unified")
    try:
        yield m
    finally:
        m.remove()


@pytest.fixture
def hybrid_machine(root_tar, debs, system_lock, topo):
    """A machine of its own in a topology of its own, on the host's hybrid layout."""
    m = _boot(root_tar, debs, topo, "hybrid")
    try:
        yield m
    finally:
        m.remove()


@pytest.fixture
def bare_machine(root_tar, debs, system_lock, topo):
    """bare_machine(nspawn args): a unified machine given those args for BPF instead of
    NSPAWN_BPF, in a topology of its own; removed after the test."""
    made = []

    def boot(nspawn_bpf):
        made.append(_boot(root_tar, debs, topo, "unified", nspawn_bpf))
        return made[-1]
    try:
        yield boot
    finally:
        for m in made:
            m.remove()
