"""Fixtures of the real-client tests: the tools they need (missing: FAIL, never skip)
and the payload, made once per session in a temp dir of its own."""
import collections
import shutil
import subprocess
import tempfile

import pytest

from scenario import SIZE
from swarm import PY, make_payload

TOOLS = ("qbittorrent-nox", "transmission-daemon", "opentracker", "setpriv", "sha256sum")
Payload = collections.namedtuple("Payload", "dir torrent sha256")


@pytest.fixture(scope="session", autouse=True)
def client_tools(preflight):
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if subprocess.run([PY, "-c", "import libtorrent"], capture_output=True).returncode != 0:
        missing.append("python3-libtorrent (for /usr/bin/python3)")
    if missing:
        pytest.fail(f"missing: {', '.join(missing)} (scripts/install-deps.sh)", pytrace=False)


@pytest.fixture(scope="session")
def payload():
    d = tempfile.mkdtemp(prefix="vgpayload.")
    try:
        torrent, sha = make_payload(d, SIZE)
        yield Payload(d, torrent, sha)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "reference: runs with no vpnguard that explain a "
                            "client's own behaviour; only with -m reference")


def pytest_collection_modifyitems(config, items):
    if config.option.markexpr:
        return
    keep = [i for i in items if i.get_closest_marker("reference") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
