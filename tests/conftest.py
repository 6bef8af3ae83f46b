"""Fixtures of the pytest suites of vpnguard-bpf (run with Debian's pytest: pytest-3).

  vg           build/vpnguard-bpf, built by `make all` (retried: sources may be mid-edit)
  own_paths    (automatic) the session's own VPNGUARD_PIN_ROOT and VPNGUARD_RUN_DIR
  kernel_lock  flock on /run/vpnguard-kernel-tests.lock, as tests/lib/check.sh's
               take_kernel_test_lock: every test that attaches a guard holds it
  topo         a vgtopo.Topology, up for the test and always removed after it;
               routing by indirect parametrization:
                   @pytest.mark.parametrize("topo", ["split"], indirect=True)

Not root, or a tool missing: every test FAILS (never skips). SIGTERM is turned
into KeyboardInterrupt, so pytest's teardown (and the topology's cleanup) runs.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))

from vgguard import LOCK, kernel_lock_held  # noqa: E402
from vgtopo import ROUTINGS, Topology  # noqa: E402

TOOLS = ("ip", "wg", "wireguard-go", "nft", "setpriv", "sysctl", "bpftool", "make", "flock")


def _sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


def pytest_terminal_summary(terminalreporter):
    """The figures the cases measured (vgagent.fig), also where -q hides a passing case's output:
    CI's log keeps them."""
    figures = getattr(sys.modules.get("vgagent"), "SESSION_FIGURES", None)
    if figures:
        terminalreporter.write_sep("-", "figures")
        for f in figures:
            terminalreporter.write_line(f"# {f}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _sigterm)


@pytest.fixture(scope="session", autouse=True)
def preflight():
    if os.geteuid() != 0:
        pytest.fail("these tests need root (real cgroups, namespaces and BPF)", pytrace=False)
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools: {' '.join(missing)} (scripts/install-deps.sh)", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def own_paths(preflight):
    """This session's own pin root and run directory (VPNGUARD_PIN_ROOT, VPNGUARD_RUN_DIR):
    the suites run beside a vpnguard that guards the machine and never touch its pins,
    agent or lock. Whatever is left of them at the end is detached and removed."""
    tag = f"vgtest-{os.getpid()}"
    os.environ["VPNGUARD_PIN_ROOT"] = f"/sys/fs/bpf/{tag}"
    os.environ["VPNGUARD_RUN_DIR"] = f"/run/{tag}"
    yield
    binary = os.environ.get("VPNGUARD_BIN") or os.path.join(REPO, "build", "vpnguard-bpf")
    if os.path.isdir(os.environ["VPNGUARD_PIN_ROOT"]) and os.access(binary, os.X_OK):
        subprocess.run([binary, "detach"], capture_output=True, timeout=120)
    shutil.rmtree(os.environ["VPNGUARD_RUN_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def vg():
    """build/vpnguard-bpf, freshly built; a build that fails is retried for 2 minutes
    (another engineer's edit may be half-saved). VPNGUARD_BIN names another binary
    to test (an older build, to show a new case failing before its fix)."""
    if os.environ.get("VPNGUARD_BIN"):
        return os.environ["VPNGUARD_BIN"]
    end = time.monotonic() + 120
    while True:
        r = subprocess.run(["make", "-s", "-C", REPO, "all"], capture_output=True, text=True)
        if r.returncode == 0:
            break
        if time.monotonic() > end:
            pytest.fail(f"make all failed:\n{r.stdout[-2000:]}{r.stderr[-4000:]}", pytrace=False)
        time.sleep(10)
    path = os.path.join(REPO, "build", "vpnguard-bpf")
    assert os.access(path, os.X_OK), f"{path} missing after make all"
    return path


@pytest.fixture
def kernel_lock():
    """Hold the kernel tests' lock (one kernel test at a time: they load the machine); yields
    the wait (s)."""
    try:
        with kernel_lock_held() as waited:
            if waited > 1:
                print(f"kernel_lock: waited {waited:.1f} s for {LOCK}")
            yield waited
    except TimeoutError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def topo(request):
    routing = getattr(request, "param", "subnets")
    assert routing in ROUTINGS, routing
    with Topology(routing=routing) as t:
        yield t
