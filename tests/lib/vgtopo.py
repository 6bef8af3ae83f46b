"""vgtopo - the private network world of the vpnguard-bpf tests, in Python.

A faithful port of tests/lib/topology.sh (read its header for the picture): two
network namespaces HOME ("the user's machine") and INET ("VPN server" + "the
Internet") joined by a veth, a WireGuard tunnel by wireguard-go over it, the
same address plan, names with a per-run 5-hex suffix and the same nftables
counters in INET's prerouting (priority -310), plus offwg, igmp, mld, dnsveth
and dnstun for the real-client tests (tests/lib/vgnft.py says what each counts).

routing= picks HOME's main table while the tunnel is up:
  "subnets"  198.51.100.0/24 and 203.0.113.0/24 dev WG metric 10 (topology.sh's)
  "default"  default dev WG metric 10 (the tunnel preferred by the routes)
  "split"    nothing via the tunnel but its connected /24 (Table=off, split tunnel)
always with the fallback default via the veth (metric 1000) and ::/0 via fd00:99::2.

    with Topology(routing="default") as t:          # up() ... down(), always
        p = t.spawn(["prog"], cg=t.cgroup("client"), netns=t.home, user="nobody")
        t.counters()["offwg"]; t.reset_counters(); t.wait_count("tunnel", 5, 10)
        t.tunnel_down("kill"); t.tunnel_up()         # same name and keys, new ifindex
        t.run_inet(["nft", "list", "ruleset"]); t.socket(t.home)  # a socket made in HOME

Attributes are topology.sh's TOPO_* variables in lower case (home, inet,
home_netns, veth_home, wg_client, wg_client_ifindex, real_ip, vpn_ip, resolver,
cg_root, dir, ...); dir/env holds them as `export TOPO_X=...` lines for bash.

Rules kept: traffic only to addresses inside these namespaces; a process joins
its cgroup BEFORE `ip netns exec` (which remounts /sys); every process is ended
by PID, never by name; wireguard-go names are unique machine-wide (its control
socket /var/run/wireguard/NAME.sock is global); down() always cleans up.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import vgnft
from vgproc import (arrived, cg_remove, cgroup2_mount, end_popen, netns_remove,
                    netns_socket, wait_until, wrap_argv)

ROUTINGS = ("subnets", "default", "split")


class TopoError(RuntimeError):
    pass


class Topology:
    def __init__(self, routing="subnets", suffix=None, quiet=False):
        if routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, not {routing!r}")
        self.routing = routing
        self.quiet = quiet
        self.suffix = suffix or self._pick_suffix()
        s = self.suffix
        self.cg2 = cgroup2_mount()
        self.cg_root = f"{self.cg2}/vgtest{s}" if self.cg2 else None
        self.home, self.inet = f"vg{s}home", f"vg{s}inet"
        self.home_netns, self.inet_netns = f"/run/netns/{self.home}", f"/run/netns/{self.inet}"
        self.veth_home, self.veth_inet = f"vg{s}vh", f"vg{s}vi"
        self.wg_client, self.wg_server = f"vg{s}wc", f"vg{s}ws"
        self.real_ip, self.gw_ip = "10.99.0.1", "10.99.0.2"
        self.real_ip6, self.gw_ip6 = "fd00:99::1", "fd00:99::2"
        self.wg_port = 51820
        self.wg_endpoint = f"{self.gw_ip}:{self.wg_port}"
        self.vpn_ip, self.vpn_server_ip, self.vpn_net = "10.66.0.2", "10.66.0.1", "10.66.0.0/24"
        self.inet_host, self.inet_net = "198.51.100.1", "198.51.100.0/24"
        self.rogue_dns = "198.51.100.53"
        self.resolver, self.resolver_net = "203.0.113.53", "203.0.113.0/24"
        self.lan_host, self.lan_net = "192.0.2.1", "192.0.2.0/24"
        self.inet_host6 = "2001:db8:100::1"
        here = os.path.dirname(os.path.abspath(__file__))
        self.vgprobe = os.path.join(os.path.dirname(os.path.dirname(here)), "build", "vgprobe")
        self.dir = None
        self.wg_client_proc = self.wg_server_proc = None
        self.wg_client_ifindex = None
        self.procs = []
        self._etc_netns = []
        self._up = False

    # -- names, logging ---------------------------------------------------
    @staticmethod
    def _pick_suffix():
        s = None
        for _ in range(16):
            s = "%05x" % random.getrandbits(20)
            if not any(os.path.exists(p) for p in (
                    f"/run/netns/vg{s}home", f"/run/netns/vg{s}inet",
                    f"/var/run/wireguard/vg{s}wc.sock", f"/var/run/wireguard/vg{s}ws.sock")):
                break
        return s

    @property
    def wg_client_pid(self):
        p = self.wg_client_proc
        return p.pid if p is not None and p.poll() is None else None

    @property
    def wg_server_pid(self):
        p = self.wg_server_proc
        return p.pid if p is not None and p.poll() is None else None

    def log(self, msg):
        if not self.quiet:
            print(f"topo: {msg}", flush=True)

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    # -- running things ---------------------------------------------------
    def run(self, argv, cg=None, netns=None, user=None, check=False, timeout=60, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(wrap_argv(argv, cg, netns, user), check=check,
                              timeout=timeout, **kw)

    def run_inet(self, argv, **kw):
        return self.run(argv, netns=self.inet, **kw)

    def run_home(self, argv, **kw):
        return self.run(argv, netns=self.home, **kw)

    def _ip(self, ns, *args, check=True):
        r = self.run(["ip", "-n", ns] + list(args))
        if check and r.returncode != 0:
            raise TopoError(f"ip -n {ns} {' '.join(args)}: {r.stderr.strip()}")
        return r

    def _sysctl(self, ns, *settings):
        r = self.run(["sysctl", "-qw"] + list(settings), netns=ns)
        if r.returncode != 0:
            raise TopoError(f"sysctl in {ns}: {r.stderr.strip()}")

    def spawn(self, argv, cg=None, netns=None, user=None, **popen_kw):
        """Start argv in cgroup cg and netns netns (as user); the Popen's pid is the
        command itself; returns once it is in both (down() ends it)."""
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(wrap_argv(argv, cg, netns, user), **popen_kw)
        self.procs.append(p)
        ok = wait_until(lambda: p.poll() is not None or arrived(p.pid, self.cg2, cg, netns), 10)
        if not ok or p.poll() is not None:
            raise TopoError(f"spawn {argv[0]}: exited ({p.returncode}) or did not arrive")
        return p

    def stop(self, p, sig=signal.SIGTERM, grace=3.0):
        rc = end_popen(p, sig, grace)
        if p in self.procs:
            self.procs.remove(p)
        return rc

    def socket(self, netns, family=socket.AF_INET, type=socket.SOCK_STREAM):
        return netns_socket(f"/run/netns/{netns}", family, type)

    # -- cgroups ----------------------------------------------------------
    def cgroup(self, name):
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad cgroup name {name!r}")
        if not self.cg_root:
            raise TopoError("no cgroup2 mount")
        path = os.path.join(self.cg_root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def cg_remove(self, path):
        ok = cg_remove(path, self.cg_root, reap=lambda: [p.poll() for p in self.procs])
        if not ok:
            self.log(f"cannot remove cgroup {path}")
        return ok

    # -- counters (read in INET) ------------------------------------------
    def counters(self, what="packets"):
        """Every counter of INET's table: {name: packets} (what="bytes" for bytes)."""
        r = self.run_inet(["nft", "-j", "list", "counters", "table", "inet", vgnft.TABLE])
        if r.returncode != 0:
            raise TopoError(f"nft list counters: {r.stderr.strip()}")
        return vgnft.parse(r.stdout, what)

    def reset_counters(self):
        self.run_inet(["nft", "reset", "counters", "table", "inet", vgnft.TABLE], check=True)

    def settle(self, seconds=0.3):
        """wireguard-go moves packets in userspace: let packets in flight be counted."""
        time.sleep(seconds)

    def wait_count(self, name, minimum, timeout=5.0):
        return wait_until(lambda: self.counters().get(name, -1) >= minimum, timeout, 0.1)

    # -- wireguard-go -----------------------------------------------------
    def _wg_start(self, ns, ifname):
        sock = f"/var/run/wireguard/{ifname}.sock"
        try:
            os.unlink(sock)
        except FileNotFoundError:
            pass
        with open(os.path.join(self.dir, f"wireguard-go.{ifname}.log"), "ab") as log:
            p = subprocess.Popen(["ip", "netns", "exec", ns, "env", "LOG_LEVEL=error",
                                  "wireguard-go", "-f", ifname],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        ok = wait_until(lambda: p.poll() is None and os.path.exists(sock) and
                        self._ip(ns, "link", "show", ifname, check=False).returncode == 0, 10)
        if not ok:
            end_popen(p)
            raise TopoError(f"wireguard-go for {ifname} did not come up")
        return p

    def _wg_stop(self, ns, ifname, p, how="del"):
        if how == "del":
            self._ip(ns, "link", "del", ifname, check=False)
            # wireguard-go notices its TUN device went away and exits by itself.
            if p is not None and not wait_until(lambda: p.poll() is not None, 3):
                end_popen(p)
        elif how == "term":
            end_popen(p, signal.SIGTERM)
        elif how == "kill":
            end_popen(p, signal.SIGKILL)
        else:
            raise ValueError(f"unknown tunnel-down mode {how}")
        # The TUN device is not persistent: it vanishes with the last fd.
        if not wait_until(lambda: self._ip(ns, "link", "show", ifname,
                                           check=False).returncode != 0, 3):
            self._ip(ns, "link", "del", ifname, check=False)
        try:
            os.unlink(f"/var/run/wireguard/{ifname}.sock")  # SIGKILL leaves it behind
        except FileNotFoundError:
            pass

    def _wg(self, ns, *args):
        r = self.run(["wg"] + list(args), netns=ns)
        if r.returncode != 0:
            raise TopoError(f"wg {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def _client_up(self):
        h, c = self.home, self.wg_client
        self.wg_client_proc = self._wg_start(h, c)
        self._wg(h, "set", c, "private-key", f"{self.dir}/client.key", "peer", self._read("server.pub"),
                 "endpoint", self.wg_endpoint, "allowed-ips", "0.0.0.0/0")
        self._ip(h, "addr", "add", f"{self.vpn_ip}/24", "dev", c)
        self._ip(h, "link", "set", c, "up")
        if self.routing == "subnets":
            for net in (self.inet_net, self.resolver_net):
                self._ip(h, "route", "add", net, "dev", c, "src", self.vpn_ip, "metric", "10")
        elif self.routing == "default":
            self._ip(h, "route", "add", "default", "dev", c, "src", self.vpn_ip, "metric", "10")
        info = json.loads(self._ip(h, "-j", "link", "show", c).stdout)
        self.wg_client_ifindex = info[0]["ifindex"]
        self._handshake()
        self._save_env()

    def _handshake(self, timeout=30.0):
        """wireguard-go handshakes on the first packet: send one (to a port the
        counters leave out) until the handshake shows; generous on a loaded machine."""
        s = self.socket(self.home, socket.AF_INET, socket.SOCK_DGRAM)
        out, last_send = "", 0.0
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                if time.monotonic() - last_send >= 1.0:
                    last_send = time.monotonic()
                    try:
                        s.sendto(b"hs", (self.vpn_server_ip, vgnft.HS_PORT))
                    except OSError:
                        pass
                out = self._wg(self.home, "show", self.wg_client, "latest-handshakes")
                if any(len(x.split()) == 2 and int(x.split()[1]) > 0 for x in out.splitlines()):
                    return
                time.sleep(0.1)
        finally:
            s.close()
        diag = [out.strip(), self._ip(self.home, "-br", "link", check=False).stdout,
                self.run(["wg", "show", self.wg_server], netns=self.inet).stdout]
        for n in (self.wg_client, self.wg_server):
            try:
                with open(os.path.join(self.dir, f"wireguard-go.{n}.log"), errors="replace") as f:
                    diag.append(f"{n}: " + f.read()[-500:])
            except OSError:
                pass
        raise TopoError(f"no WireGuard handshake on {self.wg_client} in {timeout:.0f} s:\n"
                        + "\n".join(diag))

    def _read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read().strip()

    # -- building and removing the world ---------------------------------
    def up(self):
        if os.geteuid() != 0:
            raise TopoError("Topology needs root")
        for tool in ("ip", "wg", "wireguard-go", "nft", "setpriv", "sysctl"):
            if shutil.which(tool) is None:
                raise TopoError(f"missing tool: {tool}")
        if not self.cg2:
            raise TopoError("no cgroup2 mount")
        if os.path.exists(self.home_netns) or os.path.exists(self.inet_netns):
            raise TopoError(f"netns {self.home} or {self.inet} exists already")
        self.dir = tempfile.mkdtemp(prefix=f"vgtopo.{self.suffix}.", dir="/tmp")
        os.chmod(self.dir, 0o711)  # subdirs made for unprivileged clients stay usable
        self._up = True
        try:
            self._up_steps()
        except BaseException:
            self.log("up failed; cleaning up")
            self.down()
            raise
        self.log(f"up: {self.home} <-> {self.inet}, routing {self.routing}, tunnel "
                 f"{self.wg_client} (ifindex {self.wg_client_ifindex}), dir {self.dir}")

    def _ns_basics(self, ns):
        self._ip(ns, "link", "set", "lo", "up")
        self._sysctl(ns, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")

    def _up_steps(self):
        h, i = self.home, self.inet
        for ns in (h, i):
            r = self.run(["ip", "netns", "add", ns])
            if r.returncode != 0:
                raise TopoError(f"ip netns add {ns}: {r.stderr.strip()}")
            self._ns_basics(ns)
        for x in (f"{self.inet_host}/32", f"{self.rogue_dns}/32", f"{self.resolver}/32",
                  f"{self.lan_host}/32"):
            self._ip(i, "addr", "add", x, "dev", "lo")
        self._ip(i, "addr", "add", f"{self.inet_host6}/128", "dev", "lo", "nodad")
        # Counters before any traffic.
        r = self.run_inet(["nft", "-f", "-"], input=vgnft.rules(self))
        if r.returncode != 0:
            raise TopoError(f"nft -f: {r.stderr.strip()}")
        self._home_wire()
        old = os.umask(0o077)
        try:
            for k in ("client", "server"):
                key = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                                     check=True).stdout
                pub = subprocess.run(["wg", "pubkey"], input=key, capture_output=True,
                                     text=True, check=True).stdout
                for name, v in ((f"{k}.key", key), (f"{k}.pub", pub)):
                    with open(os.path.join(self.dir, name), "w") as f:
                        f.write(v)
        finally:
            os.umask(old)
        self.wg_server_proc = self._wg_start(i, self.wg_server)
        self._wg(i, "set", self.wg_server, "private-key", f"{self.dir}/server.key",
                 "listen-port", str(self.wg_port), "peer", self._read("client.pub"),
                 "allowed-ips", f"{self.vpn_ip}/32")
        self._ip(i, "addr", "add", f"{self.vpn_server_ip}/24", "dev", self.wg_server)
        self._ip(i, "link", "set", self.wg_server, "up")
        self._client_up()
        self._quiet_wire()
        self.reset_counters()

    def _home_wire(self):
        h, i, vh, vi = self.home, self.inet, self.veth_home, self.veth_inet
        self._ip(h, "link", "add", vh, "type", "veth", "peer", "name", vi, "netns", i)
        # The kernel's own IGMP/MLD reports for the veth's addresses: sent at once
        # and only twice (robustness), no DAD delay, so they are over at setup.
        self._sysctl(h, f"net.ipv6.conf.{vh}.accept_dad=0",
                     f"net.ipv6.conf.{vh}.mldv2_unsolicited_report_interval=10",
                     f"net.ipv6.conf.{vh}.mldv1_unsolicited_report_interval=10",
                     f"net.ipv4.conf.{vh}.igmpv3_unsolicited_report_interval=10",
                     f"net.ipv4.conf.{vh}.igmpv2_unsolicited_report_interval=10")
        self._ip(h, "addr", "add", f"{self.real_ip}/24", "dev", vh)
        self._ip(i, "addr", "add", f"{self.gw_ip}/24", "dev", vi)
        self._ip(h, "addr", "add", f"{self.real_ip6}/64", "dev", vh, "nodad")
        self._ip(i, "addr", "add", f"{self.gw_ip6}/64", "dev", vi, "nodad")
        self._ip(h, "link", "set", vh, "up")
        self._ip(i, "link", "set", vi, "up")
        self._ip(h, "route", "add", self.lan_net, "via", self.gw_ip, "dev", vh)
        self._ip(h, "route", "add", "default", "via", self.gw_ip, "dev", vh, "metric", "1000")
        self._ip(h, "-6", "route", "add", "default", "via", self.gw_ip6, "dev", vh,
                 "metric", "1000")

    def _quiet_wire(self):
        """Wait until the setup's own chatter on the veth is over (no tentative
        address left, the off-tunnel counter still for a second)."""
        wait_until(lambda: "tentative" not in self._ip(self.home, "-6", "addr", "show", "dev",
                                                          self.veth_home).stdout, 5)
        last, still = None, time.monotonic()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            now = self.counters().get("offwg")
            if now != last:
                last, still = now, time.monotonic()
            elif time.monotonic() - still >= 1.0:
                return
            time.sleep(0.1)
        raise TopoError("the veth did not go quiet within 15 s")

    def tunnel_down(self, how="del"):
        self._wg_stop(self.home, self.wg_client, self.wg_client_proc, how)
        if (self._ip(self.home, "link", "show", self.wg_client, check=False).returncode == 0
                or self.wg_client_pid is not None):
            raise TopoError(f"tunnel {self.wg_client} did not go away")
        self.wg_client_proc = None
        self._save_env()

    def tunnel_up(self):
        if self._ip(self.home, "link", "show", self.wg_client, check=False).returncode == 0:
            raise TopoError(f"tunnel {self.wg_client} exists already")
        self._client_up()

    def netns_resolv_conf(self, ns, *nameservers):
        """ns's own resolv.conf (`ip netns exec` bind-mounts /etc/netns/NS/*); down() removes it."""
        if ns not in (self.home, self.inet):
            raise ValueError(f"{ns} is not one of ours")
        d = f"/etc/netns/{ns}"
        os.makedirs(d, exist_ok=True)
        self._etc_netns.append(d)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("".join(f"nameserver {n}\n" for n in nameservers)
                    + "options timeout:1 attempts:2\n")
        return d

    def inet_addr(self, addr, route_only=False):
        """One more "Internet" address in INET (on lo: this kernel has no dummy).
        route_only: a local route, no interface address, so programs that bind
        to the device of their address (libtorrent 2.0 does) stay unbound."""
        addr = addr if "/" in addr else f"{addr}/32"
        if route_only:
            self._ip(self.inet, "route", "add", "local", addr, "dev", "lo", "table", "local")
        else:
            self._ip(self.inet, "addr", "add", addr, "dev", "lo")

    def down(self):
        """Remove everything; idempotent, safe on a half-built world."""
        if not self._up:
            return
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut it short
        try:
            for p in list(reversed(self.procs)):
                end_popen(p)
            self.procs = []
            if self.cg_root and os.path.isdir(self.cg_root):
                self.cg_remove(self.cg_root)
            self._wg_stop(self.home, self.wg_client, self.wg_client_proc, "term")
            self._wg_stop(self.inet, self.wg_server, self.wg_server_proc, "term")
            self.wg_client_proc = self.wg_server_proc = None
            netns_remove(self.home)
            netns_remove(self.inet)
            for d in self._etc_netns:
                shutil.rmtree(d, ignore_errors=True)
            if self._etc_netns:
                try:
                    os.rmdir("/etc/netns")  # only if nobody else has a file there
                except OSError:
                    pass
            self._etc_netns = []
            if self.dir and os.path.isdir(self.dir):
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self._up = False
        finally:
            signal.signal(signal.SIGINT, old)

    def _save_env(self):
        """$dir/env: topology.sh's `export TOPO_X=...` lines, for topo_load in bash."""
        if not self.dir or not os.path.isdir(self.dir):
            return
        import shlex
        names = ("suffix dir cg2 cg_root home inet home_netns inet_netns veth_home veth_inet "
                 "real_ip gw_ip real_ip6 gw_ip6 wg_client wg_server wg_client_pid wg_server_pid "
                 "wg_client_ifindex wg_port wg_endpoint vpn_ip vpn_server_ip vpn_net inet_host "
                 "inet_net rogue_dns resolver resolver_net lan_host lan_net inet_host6 vgprobe")
        with open(os.path.join(self.dir, "env"), "w") as f:
            for n in names.split():
                v = getattr(self, n)
                f.write(f"export TOPO_{n.upper()}={shlex.quote('' if v is None else str(v))}\n")
