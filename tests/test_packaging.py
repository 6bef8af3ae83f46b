"""The Debian package as CI would build it: `make deb` in a clean copy of the committed tree
(`git archive HEAD` into a temp dir, no .git), checked without installing anything here
(installing, upgrading and purging are tests/system/'s, inside a booted container).

  - dpkg-checkbuilddeps passes on this machine (Build-Depends are installed);
  - `make deb` and `make deb DEB_VERSION=0.0.9` leave their .debs in build/deb/ and nothing
    outside build/ (the copy's files are unchanged, its parent holds nothing new);
  - lintian --pedantic says nothing, and each tag the overrides silence is used and explained
    in docs/packaging.md;
  - dpkg-deb -c: each path with its mode, nothing under /lib; the conffiles; the control
    fields; the maintainer scripts: vpnguard.service not enabled on install, restarted and
    never stopped on upgrade, stopped on removal, the slice never touched, purge removes the
    config directory and the log;
  - from the unpacked package: the binary's --version, the man pages render, the completion
    completes with the packaged binary and bash-completion loads it by the command's name;
  - debian/changelog's version is user/lib/version.h's;
  - `make install` (this tree, into a temp DESTDIR) puts the man pages and the completion
    where PREFIX, MANDIR and BASHCOMPDIR say.

Root (dpkg-buildpackage's clean and the unit tests run as the caller). Two package builds
(the second without the unit tests): about 3 minutes on 2 idle cores, 6 on a loaded machine.

    pytest-3 -p no:cacheprovider tests/test_packaging.py
    pytest-3 -p no:cacheprovider tests/test_packaging.py -k contents
"""
import hashlib
import os
import re
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def run(cmd, cwd=None, timeout=900, **kw):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def version_h(root=REPO):
    with open(os.path.join(root, "user", "lib", "version.h")) as f:
        return re.search(r'#define VG_VERSION "([^"]+)"', f.read()).group(1)


def tree_digest(root):
    """{path: sha256} of every file outside build/."""
    out = {}
    for d, dirs, files in os.walk(root):
        if d == root and "build" in dirs:
            dirs.remove("build")
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
VERSION = version_h()
OLD = "0.0.9"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The copy, both packages, the time each build took, and the copy before and after."""
    top = tmp_path_factory.mktemp("pkg")
    src = top / "vpnguard-bpf"
    src.mkdir()
    archive = subprocess.run(["git", "-C", REPO, "archive", "HEAD"], capture_output=True, timeout=120)
    assert archive.returncode == 0, archive.stderr
    subprocess.run(["tar", "-xf", "-", "-C", str(src)], input=archive.stdout, check=True, timeout=120)
    before, parent_before = tree_digest(str(src)), sorted(os.listdir(top))
    took = {}
    for version in (VERSION, OLD):
        start = time.monotonic()
        # The unit tests run in the first build; the second is the same code.
        env = {**os.environ, "DEB_BUILD_OPTIONS": "" if version == VERSION else "nocheck"}
        run(["make", "deb"] + ([f"DEB_VERSION={version}"] if version != VERSION else []), cwd=str(src), env=env)
        took[version] = time.monotonic() - start
    print(f"\nmake deb: {took[VERSION]:.0f} s; make deb DEB_VERSION={OLD}: {took[OLD]:.0f} s")
    debs = {v: src / "build" / "deb" / f"vpnguard-bpf_{v}_{ARCH}.deb" for v in (VERSION, OLD)}
    unpacked = {}
    for v, deb in debs.items():
        unpacked[v] = top / f"unpacked-{v}"
        run(["dpkg-deb", "-x", str(deb), str(unpacked[v])])
        run(["dpkg-deb", "-e", str(deb), str(unpacked[v] / "DEBIAN")])
    return {"src": str(src), "top": str(top), "debs": debs, "unpacked": unpacked, "took": took,
            "before": before, "after": tree_digest(str(src)),
            "parent_before": parent_before, "parent_after": sorted(os.listdir(top))}


def test_changelog_is_version_h():
    out = run(["dpkg-parsechangelog", "-S", "Version"], cwd=REPO)
    assert out.strip() == VERSION


def test_checkbuilddeps(built):
    run(["dpkg-checkbuilddeps"], cwd=built["src"])


@pytest.mark.parametrize("what", ["debs", "tree", "parent"])
def test_artifacts_stay_in_build(built, what):
    if what == "debs":
        names = sorted(os.listdir(os.path.join(built["src"], "build", "deb")))
        assert [n for n in names if n.endswith(".deb")] == sorted(f"vpnguard-bpf_{v}_{ARCH}.deb"
                                                                 for v in (VERSION, OLD)), names
        # The package tree under build/ is gone once the .deb is out.
        assert not [d for d in os.listdir(os.path.join(built["src"], "build")) if d.startswith("debsrc")]
    elif what == "tree":
        changed = {p for p in set(built["before"]) | set(built["after"])
                   if built["before"].get(p) != built["after"].get(p)}
        assert not changed, sorted(changed)
    else:
        assert built["parent_after"] == sorted(built["parent_before"] + [f"unpacked-{v}" for v in (VERSION, OLD)])


def overrides():
    with open(os.path.join(REPO, "debian", "vpnguard-bpf.lintian-overrides")) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


def lintian(deb, *flags):
    r = subprocess.run(["lintian", "--pedantic", "--display-info", *flags, str(deb)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr
    return [line for line in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", line)]


@pytest.mark.parametrize("version", [VERSION, OLD])
def test_lintian_clean(built, version):
    assert lintian(built["debs"][version]) == []


def test_lintian_overrides_used_and_explained(built):
    shown = lintian(built["debs"][VERSION], "--show-overrides")
    with open(os.path.join(REPO, "docs", "packaging.md")) as f:
        doc = f.read()
    for tag in overrides():
        assert any(line.startswith("O: ") and f" {tag} " in line + " " for line in shown), \
            f"override {tag} is not used: {shown}"
        assert f"`{tag}`" in doc, f"{tag} is not explained in docs/packaging.md"
    assert all(line.startswith("O: ") for line in shown), shown


# (path, mode, type: - file, d directory) in the package.
CONTENTS = [
    ("usr/sbin/vpnguard-bpf", "rwxr-xr-x", "-"),
    ("etc/vpnguard", "rwxr-xr-x", "d"),
    ("etc/vpnguard/vpnguard.conf", "rw-------", "-"),
    ("etc/logrotate.d/vpnguard", "rw-r--r--", "-"),
    ("usr/lib/systemd/system/vpnguard.service", "rw-r--r--", "-"),
    ("usr/lib/systemd/system/vpnguard.slice", "rw-r--r--", "-"),
    ("usr/lib/systemd/system/vpnguard-report.service", "rw-r--r--", "-"),
    ("usr/lib/systemd/system/vpnguard-report.timer", "rw-r--r--", "-"),
    ("usr/share/man/man8/vpnguard-bpf.8.gz", "rw-r--r--", "-"),
    ("usr/share/man/man5/vpnguard.conf.5.gz", "rw-r--r--", "-"),
    ("usr/share/bash-completion/completions/vpnguard-bpf", "rw-r--r--", "-"),
    ("usr/share/doc/vpnguard-bpf/copyright", "rw-r--r--", "-"),
    ("usr/share/doc/vpnguard-bpf/changelog.gz", "rw-r--r--", "-"),
    ("usr/share/doc/vpnguard-bpf/README.md", "rw-r--r--", "-"),
    ("usr/share/doc/vpnguard-bpf/docs/design.md", "rw-r--r--", "-"),
    ("usr/share/doc/vpnguard-bpf/vpnguard.conf.sample", "rw-r--r--", "-"),
]


@pytest.fixture(scope="module")
def contents(built):
    """{path: (mode, type, owner)} of dpkg-deb -c."""
    out = {}
    for line in run(["dpkg-deb", "-c", str(built["debs"][VERSION])]).splitlines():
        perm, owner, _size, _date, _time, path = line.split(None, 5)
        out[path.removeprefix("./").rstrip("/")] = (perm[1:], perm[0], owner)
    return out


@pytest.mark.parametrize("path,mode,kind", CONTENTS, ids=[c[0] for c in CONTENTS])
def test_contents(contents, path, mode, kind):
    assert path in contents, f"{path} is not in the package"
    assert contents[path] == (mode, kind, "root/root")


def test_contents_nothing_else_odd(contents):
    assert not [p for p in contents if p == "lib" or p.startswith("lib/")], "units belong in /usr/lib"
    assert not [p for p in contents if p.startswith(("var/", "run/", "sys/"))]
    setid = [p for p, (mode, _, _) in contents.items() if "s" in mode]
    assert not setid


def control(built, name, version=VERSION):
    with open(built["unpacked"][version] / "DEBIAN" / name) as f:
        return f.read()


def test_conffiles(built):
    assert control(built, "conffiles").split() == ["/etc/logrotate.d/vpnguard", "/etc/vpnguard/vpnguard.conf"]


@pytest.mark.parametrize("field,want", [
    ("Package", "vpnguard-bpf"),
    ("Version", VERSION),
    ("Architecture", ARCH),
    ("Depends", r"(^|, )libcurl4(,|$)"),
    ("Depends", r"(^|, )libmicrohttpd12(,|$)"),
    ("Depends", r"(^|, )libbpf1 "),
    ("Depends", r"(^|, )libsystemd0 "),
], ids=["package", "version", "arch", "libcurl4", "libmicrohttpd12", "libbpf1", "libsystemd0"])
def test_control(built, field, want):
    fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", control(built, "control"), re.M))
    assert re.search(want, fields[field]) if field == "Depends" else fields[field] == want, fields


# (script, a line pattern, present?): what each maintainer script does to the units.
SCRIPTS = [
    ("postinst", r"deb-systemd-helper --quiet was-enabled 'vpnguard.service'", True),
    ("postinst", r"_dh_action=restart", True),
    ("postinst", r"deb-systemd-invoke \$_dh_action 'vpnguard-report.timer' 'vpnguard.service'", True),
    ("postinst", r"vpnguard\.slice|vpnguard-report\.service", False),
    ("postinst", r"^\s*deb-systemd-helper enable 'vpnguard.service' >/dev/null \|\| true$", True),
    ("prerm", r"\[ \"\$1\" = remove \].*\n\s*deb-systemd-invoke stop 'vpnguard-report.timer' 'vpnguard.service'",
     True),
    ("prerm", r"vpnguard\.slice|upgrade", False),
    ("postrm", r"rm -rf /etc/vpnguard /var/log/vpnguard /run/vpnguard", True),
    ("postrm", r"deb-systemd-helper purge 'vpnguard-report.timer' 'vpnguard.service'", True),
    ("postrm", r"detach|/sys/fs/bpf", False),
]


@pytest.mark.parametrize("script,pattern,present", SCRIPTS,
                         ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(SCRIPTS)])
def test_maintainer_scripts(built, script, pattern, present):
    text = "\n".join(line for line in control(built, script).splitlines() if not line.lstrip().startswith("#"))
    assert bool(re.search(pattern, text, re.M)) == present, text


def test_no_preinst_stop(built):
    """Nothing stops the agent before an upgrade: no preinst at all."""
    assert not os.path.exists(built["unpacked"][VERSION] / "DEBIAN" / "preinst")


def test_enable_only_when_it_was(built):
    """The only enable is in the was-enabled branch: a fresh install enables nothing."""
    text = control(built, "postinst")
    for m in re.finditer(r"deb-systemd-helper enable '([^']+)'", text):
        before = text[:m.start()].rsplit("if deb-systemd-helper --quiet was-enabled", 1)
        assert len(before) == 2 and f"'{m.group(1)}'; then" in before[1].split("\n", 1)[0], text


@pytest.mark.parametrize("version", [VERSION, OLD])
def test_binary_version(built, version):
    out = run([str(built["unpacked"][version] / "usr" / "sbin" / "vpnguard-bpf"), "--version"])
    assert out.strip() == f"vpnguard-bpf {version}"


def test_unit_runs_the_packaged_binary(built):
    with open(built["unpacked"][VERSION] / "usr" / "lib" / "systemd" / "system" / "vpnguard.service") as f:
        unit = f.read()
    assert "\nExecStart=/usr/sbin/vpnguard-bpf attach --config /etc/vpnguard/vpnguard.conf\n" in unit


@pytest.mark.parametrize("page", ["man8/vpnguard-bpf.8.gz", "man5/vpnguard.conf.5.gz"])
def test_packaged_man_page(built, page):
    path = built["unpacked"][VERSION] / "usr" / "share" / "man" / page
    r = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip() and "SEE ALSO" in r.stdout, r.stderr


def test_packaged_completion(built):
    root = built["unpacked"][VERSION]
    script = (f"source {root}/usr/share/bash-completion/completions/vpnguard-bpf\n"
              f"COMP_WORDS=({root}/usr/sbin/vpnguard-bpf status --); COMP_CWORD=2\n"
              "_vpnguard_bpf; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = run(["/bin/bash", "--norc", "-c", script])
    assert sorted(out.split()) == ["--check", "--help", "--json"]


def test_packaged_completion_loads_on_demand(built):
    """bash-completion finds it by the command's name in its completions dir, as installed."""
    share = built["unpacked"][VERSION] / "usr" / "share"
    script = ("source /usr/share/bash-completion/bash_completion\n"
              "__load_completion vpnguard-bpf && complete -p vpnguard-bpf\n")
    out = run(["/bin/bash", "--norc", "-c", script], env={**os.environ, "XDG_DATA_DIRS": str(share)})
    assert out.strip() == "complete -F _vpnguard_bpf vpnguard-bpf"


@pytest.mark.parametrize("prefix,completions", [
    ("/usr", "/usr/share/bash-completion/completions"),
    ("/usr/local", "/usr/local/share/bash-completion/completions"),
], ids=["usr", "usr-local"])
def test_make_install_man_and_completion(tmp_path, prefix, completions):
    """make install (this tree) puts the man pages in MANDIR and the completion where
    bash-completion looks for PREFIX; MANDIR and BASHCOMPDIR move them."""
    run(["make", "-s", "-C", REPO, "install", f"DESTDIR={tmp_path}/a", f"PREFIX={prefix}"])
    for path in (f"{prefix}/share/man/man8/vpnguard-bpf.8", f"{prefix}/share/man/man5/vpnguard.conf.5",
                 f"{completions}/vpnguard-bpf"):
        assert os.path.isfile(f"{tmp_path}/a{path}"), path
    run(["make", "-s", "-C", REPO, "install", f"DESTDIR={tmp_path}/b", f"PREFIX={prefix}",
         "MANDIR=/m", "BASHCOMPDIR=/c"])
    for path in ("/m/man8/vpnguard-bpf.8", "/m/man5/vpnguard.conf.5", "/c/vpnguard-bpf"):
        assert os.path.isfile(f"{tmp_path}/b{path}"), path
