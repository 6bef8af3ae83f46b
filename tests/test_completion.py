"""Bash completion (completion/vpnguard-bpf.bash) driven the way bash drives it: a small bash
script sources the file, sets COMP_WORDS and COMP_CWORD, calls _vpnguard_bpf and prints
COMPREPLY, one case per row of CASES.

The world: the binary under test (the `vg` fixture) as COMP_WORDS[0]; PATH holds only a temp
dir with ls, timeout and, per case, a fake `docker` (one that names two containers, one that
hangs, or none); a temp cgroup directory with two children under the real cgroup v2 mount
(found in /proc/self/mounts; removed after the module); a temp config with two guards; temp
files for the file options. Nothing else is touched.

    pytest-3 -p no:cacheprovider tests/test_completion.py
    pytest-3 -p no:cacheprovider tests/test_completion.py -k docker
"""
import os
import shutil
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COMPLETION = os.path.join(REPO, "completion", "vpnguard-bpf.bash")

HARNESS = r"""
source "$COMPLETION" || exit 90
[ -n "${CONF-}" ] && _vpnguard_bpf_config=$CONF
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_vpnguard_bpf
printf '%s\n' "${COMPREPLY[@]}"
"""

DOCKERS = {
    "names": "#!/bin/sh\n[ \"$1\" = -H ] && { echo \"via-$2\"; exit 0; }\nprintf 'qbittorrent\\ngluetun\\n'\n",
    "hangs": "#!/bin/sh\nexec sleep 30\n",
    "none": None,
}

# A binary whose usage grows a command and an option: the completion follows --help.
FAKE_BIN = """#!/bin/sh
cat <<'EOF'
usage:
  vpnguard-bpf attach  --cgroup PATH [--cgroup PATH]...
  vpnguard-bpf polish  [--shiny] [--colour NAME]
  vpnguard-bpf --help | --version
EOF
"""


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, where, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return where
    pytest.fail("no cgroup v2 mount in /proc/self/mounts", pytrace=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The temp dirs, the cgroup directory (always removed) and the harness."""
    t = tmp_path_factory.mktemp("completion")
    mnt = cgroup2_mount()
    cg = os.path.join(mnt, f"vgcomp-{os.getpid()}")
    os.mkdir(cg)
    try:
        for child in ("torrent", "arr"):
            os.mkdir(os.path.join(cg, child))
        for name in ("vpnguard.conf", "vpnguard.conf.bak", "ca.pem"):
            (t / name).write_text("")
        conf = t / "guards.conf"
        conf.write_text("[agent]\nlog = /dev/null\n\n[guard torrent]\ncgroup = /x\n\n[guard arr-stack]\n"
                        "cgroup = /y\n")
        (t / "harness.sh").write_text(HARNESS)
        fake = t / "fake-vpnguard-bpf"
        fake.write_text(FAKE_BIN)
        fake.chmod(0o755)
        for kind, script in DOCKERS.items():
            d = t / f"path-{kind}"
            d.mkdir()
            for tool in ("ls", "timeout", "sleep", "cat"):
                os.symlink(shutil.which(tool), d / tool)
            if script:
                (d / "docker").write_text(script)
                (d / "docker").chmod(0o755)
        yield {"t": str(t), "cgroup": cg, "rel": os.path.basename(cg), "mnt": mnt, "conf": str(conf),
               "fake": str(fake)}
    finally:
        for child in ("torrent", "arr"):
            if os.path.isdir(os.path.join(cg, child)):
                os.rmdir(os.path.join(cg, child))
        os.rmdir(cg)


def complete(world, words, binary, docker="none", conf=None):
    env = {"PATH": os.path.join(world["t"], f"path-{docker}"), "COMPLETION": COMPLETION, "HOME": world["t"]}
    if conf:
        env["CONF"] = conf
    start = time.monotonic()
    r = subprocess.run(["/bin/bash", "--norc", "--noprofile", os.path.join(world["t"], "harness.sh"),
                        binary] + words, capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.split("\n") if w], time.monotonic() - start


def ifaces(prefix=""):
    return sorted(i for i in os.listdir("/sys/class/net") if i.startswith(prefix))


COMMANDS = ["attach", "detach", "status", "events", "scan", "report", "doctor", "--help", "--version"]

# (id, words after the binary (the last is the word being completed), fake docker, expected).
# Expected: a list (exact, in any order), or a function of the world giving that list.
CASES = [
    ("commands", [""], "none", COMMANDS),
    ("command-prefix", ["at"], "none", ["attach"]),
    ("help-prefix", ["--h"], "none", ["--help"]),
    ("unknown-command", ["polish", "--"], "none", []),
    ("attach-t", ["attach", "--t"], "none", ["--tunnel", "--tunnel-container"]),
    ("given-once-not-again", ["attach", "--tunnel", "wg0", "--t"], "none", ["--tunnel-container"]),
    ("repeatable-again", ["attach", "--allow", "10.0.0.0/8", "--al"], "none", ["--allow"]),
    ("switch-given", ["status", "--json", ""], "none", ["--check", "--help"]),
    ("events", ["events", "--"], "none", ["--follow", "--json", "--help"]),
    ("report", ["report", "--"], "none", ["--since", "--json", "--log", "--config", "--post", "--help"]),
    ("doctor", ["doctor", ""], "none", ["--json", "--help"]),
    ("detach", ["detach", "--cgroup", "/x", ""], "none", ["--cgroup", "--help"]),
    ("option-of-another-command", ["status", "--cgroup", ""], "none", ["--json", "--check", "--help"]),
    ("restart-dependents", ["attach", "--res"], "none", ["--restart-dependents"]),
    ("on-closed", ["attach", "--on-closed", ""], "none", ["pause", "stop", "none"]),
    ("on-closed-prefix", ["attach", "--on-closed", "p"], "none", ["pause"]),
    ("tunnel", ["attach", "--tunnel", ""], "none", lambda w: ifaces()),
    ("tunnel-prefix", ["attach", "--tunnel", "l"], "none", lambda w: ifaces("l")),
    ("cgroup-children", ["attach", "--cgroup", "{cgroup}/"], "none",
     lambda w: [w["cgroup"] + "/arr", w["cgroup"] + "/torrent"]),
    ("cgroup-prefix", ["attach", "--cgroup", "{cgroup}/t"], "none", lambda w: [w["cgroup"] + "/torrent"]),
    ("cgroup-relative", ["attach", "--cgroup", "{rel}/t"], "none", lambda w: [w["rel"] + "/torrent"]),
    ("cgroup-top", ["detach", "--cgroup", ""], "none",
     lambda w: sorted(os.path.join(w["mnt"], d) for d in os.listdir(w["mnt"])
                      if os.path.isdir(os.path.join(w["mnt"], d)))),
    ("cgroup-outside-the-mount", ["attach", "--cgroup", "/etc/"], "none",
     lambda w: sorted(os.path.join(w["mnt"], d) for d in os.listdir(w["mnt"])
                      if os.path.isdir(os.path.join(w["mnt"], d)))),
    ("containers", ["attach", "--container", ""], "names", ["qbittorrent", "gluetun"]),
    ("container-prefix", ["attach", "--tunnel-container", "g"], "names", ["gluetun"]),
    ("docker-host-passed", ["attach", "--docker-host", "unix:///x.sock", "--container", ""], "names",
     ["via-unix:///x.sock"]),
    ("docker-hangs", ["attach", "--container", ""], "hangs", []),
    ("no-docker", ["attach", "--container", ""], "none", []),
    ("config-file", ["attach", "--config", "{t}/vpn"], "none",
     lambda w: [w["t"] + "/vpnguard.conf", w["t"] + "/vpnguard.conf.bak"]),
    ("log-file", ["report", "--log", "{t}/vpnguard.conf."], "none", lambda w: [w["t"] + "/vpnguard.conf.bak"]),
    ("probe-ca-file", ["attach", "--probe-ca", "{t}/ca"], "none", lambda w: [w["t"] + "/ca.pem"]),
    ("check-guards", ["status", "--check", ""], "none", ["torrent", "arr-stack"]),
    ("check-guard-prefix", ["status", "--check", "a"], "none", ["arr-stack"]),
    ("value-without-completion", ["attach", "--fwmark", ""], "none", []),
]


@pytest.mark.parametrize("words,docker,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_complete(vg, world, words, docker, want):
    words = [w.format(**world) for w in words]
    got, took = complete(world, words, vg, docker, conf=world["conf"])
    want = want(world) if callable(want) else want
    assert sorted(got) == sorted(want)
    # A hung engine costs the 1 s timeout, never more.
    assert took < 10, f"completion took {took:.1f} s"


@pytest.mark.parametrize("words,want", [
    ([""], ["attach", "polish", "--help", "--version"]),
    (["polish", ""], ["--shiny", "--colour", "--help"]),
    (["polish", "--colour", ""], []),
], ids=["commands", "options", "valued"])
def test_follows_the_usage(world, words, want):
    """Commands and options are the binary's own --help: a new one needs no edit here."""
    got, _ = complete(world, words, world["fake"])
    assert sorted(got) == sorted(want)


def test_registered(world):
    r = subprocess.run(["/bin/bash", "--norc", "-c", f"source {COMPLETION} && complete -p vpnguard-bpf"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "complete -F _vpnguard_bpf vpnguard-bpf", r.stdout + r.stderr
