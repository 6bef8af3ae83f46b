"""The man pages against the program: vpnguard-bpf(8) and vpnguard.conf(5) (man/*.scd, built by
`make man` into build/man/) say what --help, the parser and the sources say, both ways.

  - every option --help lists (every --word) is an option the man page defines, and back;
  - the commands of --help are the man page's COMMANDS, and back; each command's SYNOPSIS line
    is its --help line;
  - the exit statuses, the agent's signals and the environment variables the sources use are
    documented;
  - the config keys the parser takes ([agent]: config.c's agent_key; [guard NAME]: every
    attach option of args.c's table but those config.c refuses) and those of the sample config
    are the keys vpnguard.conf(5) defines, per section, and back; its example parses;
  - both pages render with no warning from man and have the NAME line mandb reads.

No kernel, no guard: --help needs no root, `report --config` only parses the file (root, as
every command; conftest's preflight asks for root anyway).

    pytest-3 -p no:cacheprovider tests/test_manpage.py
    pytest-3 -p no:cacheprovider tests/test_manpage.py -k 'guard and man_to'
"""
import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAN8 = os.path.join(REPO, "man", "vpnguard-bpf.8.scd")
MAN5 = os.path.join(REPO, "man", "vpnguard.conf.5.scd")


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def section(text, title, level="#"):
    """The text of the scdoc section `title` (up to the next heading of its level or above)."""
    m = re.search(rf"^{level} {re.escape(title)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", text, re.M | re.S)
    assert m, f"no section '{title}'"
    return m.group(1)


def defined(text, pattern):
    """The terms of scdoc definition lines (a line of terms, then tab-indented text)."""
    return {t for line in text.splitlines() if not line.startswith("\t")
            for t in re.findall(pattern, line)} - {""}


@pytest.fixture(scope="module")
def help_text(vg):
    r = subprocess.run([vg, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_commands(help_text):
    """{command: its usage text}, the continuation lines included."""
    cmds, cur = {}, None
    for line in help_text.splitlines():
        m = re.match(r"\s*vpnguard-bpf\s+(\S+)", line)
        if m:
            cur = m.group(1) if not m.group(1).startswith("-") else None
            if cur:
                cmds[cur] = line
        elif cur and line.startswith(" "):
            cmds[cur] += "\n" + line
    return cmds


@pytest.fixture(scope="module")
def man_built():
    r = subprocess.run(["make", "-s", "-C", REPO, "man"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return {p: os.path.join(REPO, "build", "man", p) for p in ("vpnguard-bpf.8", "vpnguard.conf.5")}


# --- vpnguard-bpf(8) ------------------------------------------------------------------------

def man8_options():
    return defined(section(read("man", "vpnguard-bpf.8.scd"), "OPTIONS"), r"\*(--[a-z][a-z-]*)\*")


@pytest.mark.parametrize("direction", ["help_to_man", "man_to_help"])
def test_options(help_text, direction):
    helped = set(re.findall(r"--[a-z][a-z-]*", help_text))
    man = man8_options()
    missing = helped - man if direction == "help_to_man" else man - helped
    assert not missing, f"{direction}: {sorted(missing)}"


@pytest.mark.parametrize("direction", ["help_to_man", "man_to_help"])
def test_commands(help_text, direction):
    helped = set(help_commands(help_text))
    man = set(re.findall(r"^## (\S+)$", section(read("man", "vpnguard-bpf.8.scd"), "COMMANDS"), re.M))
    missing = helped - man if direction == "help_to_man" else man - helped
    assert not missing, f"{direction}: {sorted(missing)}"


def plain(scd):
    """scdoc markup off: *bold*, _underline_, escaped backslashes."""
    return re.sub(r"(?<![A-Za-z0-9])[*_]|[*_](?![A-Za-z0-9])", "", scd).split()


@pytest.mark.parametrize("cmd", ["detach", "status", "events", "scan", "report", "doctor"])
def test_synopsis_is_the_usage(help_text, cmd):
    """attach's SYNOPSIS is two short forms (its options are OPTIONS'); the others are --help's."""
    synopsis = section(read("man", "vpnguard-bpf.8.scd"), "SYNOPSIS")
    lines = [plain(line) for line in synopsis.splitlines() if line.startswith(f"*vpnguard-bpf {cmd}*")]
    assert lines == [help_commands(help_text)[cmd].split()]


def test_synopsis_attach_options_are_attach_options(help_text):
    synopsis = section(read("man", "vpnguard-bpf.8.scd"), "SYNOPSIS")
    used = set(re.findall(r"--[a-z-]+", "".join(l for l in synopsis.splitlines() if "attach" in l)))
    assert used <= set(re.findall(r"--[a-z][a-z-]*", help_commands(help_text)["attach"]))


def exit_statuses():
    """Every exit status the sources name: commands.h's enum and its *_EXIT_* defines."""
    src = read("user", "cli", "commands.h") + read("user", "scan", "scan.h")
    return set(re.findall(r"EXIT_[A-Z]+ = (\d+)", src)) | set(re.findall(r"#define VG_\w+_EXIT_\w+ (\d+)", src))


def sources():
    out = []
    for d, _, files in os.walk(os.path.join(REPO, "user")):
        out += [open(os.path.join(d, f)).read() for f in files if f.endswith(".c")]
    return "\n".join(out)


# SIGPIPE is blocked so that a closed peer is an error return, not a death: nobody sends it.
SIGNALS_NOT_FOR_USERS = {"SIGPIPE"}


@pytest.mark.parametrize("what", ["exit", "signals", "environment"])
def test_documented(what):
    man = read("man", "vpnguard-bpf.8.scd")
    if what == "exit":
        want = exit_statuses()
        have = defined(section(man, "EXIT STATUS"), r"\*(\d+)\*")
        assert {"0", "1", "2", "3"} <= want
    elif what == "signals":
        agent = read("user", "agent", "agent.c")
        want = set(re.findall(r"sigaddset\(&mask, (SIG[A-Z]+)\)", agent)) - SIGNALS_NOT_FOR_USERS
        have = defined(section(man, "SIGNALS"), r"\*(SIG[A-Z]+)\*")
        assert "SIGHUP" in want
    else:
        want = set(re.findall(r'getenv\("([A-Z_]+)"\)', sources()))
        have = defined(section(man, "ENVIRONMENT"), r"\*([A-Z_]+)\*")
        assert "VPNGUARD_PIN_ROOT" in want or "VPNGUARD_PIN_ROOT" in read("user", "core", "paths.c")
        want |= set(re.findall(r'from_env\("([A-Z_]+)"', read("user", "core", "paths.c")))
    assert want <= have, f"undocumented {what}: {sorted(want - have)}"


# --- vpnguard.conf(5) -----------------------------------------------------------------------

def parser_keys():
    """{section: keys} the config parser takes."""
    args, conf = read("user", "cli", "args.c"), read("user", "cli", "config.c")
    table = re.search(r"static const struct flag flags\[\] = \{(.*?)\n\};", args, re.S).group(1)
    attach = {name for name, cmds in re.findall(r'\{ "--([a-z-]+)",([^}]*)\}', table)
              if "VG_CMD_ATTACH" in cmds}
    not_here = set(re.findall(r'"([a-z-]+)"', re.search(r"not_here\[\] = \{([^}]*)\}", conf).group(1)))
    agent_fn = re.search(r"static int agent_key\(.*?\n\}\n", conf, re.S).group(0)
    agent = set(re.findall(r'strcmp\(key, "([a-z-]+)"\)', agent_fn))
    assert attach and not_here and agent
    return {"agent": agent, "guard": attach - not_here}


def sample_keys():
    """{section: keys} of scripts/dist/vpnguard.conf, its commented-out lines included."""
    keys, cur = {"agent": set(), "guard": set()}, None
    for line in read("scripts", "dist", "vpnguard.conf").splitlines():
        line = line.lstrip("#;").strip()
        m = re.match(r"\[(agent|guard)\b", line)
        if m:
            cur = m.group(1)
        m = re.match(r"([a-z][a-z-]*)\s*=", line)
        if m and cur:
            keys[cur].add(m.group(1))
    return keys


def man5_keys():
    man = read("man", "vpnguard.conf.5.scd")
    return {"agent": defined(section(man, "THE [agent] SECTION"), r"^\*([a-z-]+)\* ="),
            "guard": defined(section(man, "THE [guard NAME] SECTION"), r"^\*([a-z-]+)\* =")}


@pytest.mark.parametrize("sect", ["agent", "guard"])
@pytest.mark.parametrize("direction", ["parser_to_man", "man_to_parser", "sample_to_man"])
def test_config_keys(sect, direction):
    parser, man, sample = parser_keys()[sect], man5_keys()[sect], sample_keys()[sect]
    missing = {"parser_to_man": parser - man, "man_to_parser": man - parser,
               "sample_to_man": sample - man}[direction]
    assert not missing, f"[{sect}] {direction}: {sorted(missing)}"


@pytest.mark.parametrize("what", ["man5_example", "sample"])
def test_config_parses(vg, tmp_path, what):
    """`report --config FILE` loads the file as the agent does (every guard checked) and reads
    an empty log: exit 0, or 2 with NAME:LINE for a bad file."""
    if what == "sample":
        text = read("scripts", "dist", "vpnguard.conf")
    else:
        text = re.search(r"# EXAMPLE\n\n```\n(.*?)```", read("man", "vpnguard.conf.5.scd"), re.S).group(1)
    conf, log = tmp_path / "vpnguard.conf", tmp_path / "events.jsonl"
    conf.write_text(text)
    conf.chmod(0o600)
    log.write_text("")
    r = subprocess.run([vg, "report", "--config", str(conf), "--log", str(log)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- both pages -----------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["vpnguard-bpf.8", "vpnguard.conf.5"])
def test_renders(man_built, page):
    path = man_built[page]
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""})
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    assert "NAME" in r.stdout and "SEE ALSO" in r.stdout
    r = subprocess.run(["lexgrog", path], capture_output=True, text=True, timeout=60)
    name = page.rsplit(".", 1)[0]
    assert r.returncode == 0 and f'"{name} - ' in r.stdout, r.stdout + r.stderr
