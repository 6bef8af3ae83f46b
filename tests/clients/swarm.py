"""The Internet side of the real-client tests, all of it in INET.

  tracker  opentracker on TRACKER:6969 (TCP and UDP), whitelist = our torrent
  seeder   seeder.py (python3-libtorrent) on SEEDER:6881, rate-limited, DHT on
  resolver dnsd.py on the topology's resolver address: the tracker's name and
  the usual DHT bootstrap names resolve to hosts made here, every other name
  to nowhere (NXDOMAIN)

HOME and INET get a resolv.conf naming that resolver (/etc/netns/NAME/,
removed by the topology's down()).
"""
import hashlib
import json
import os

import libtorrent as lt

from vgtopo import wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's: the one with libtorrent
TRACKER = "198.51.100.10"
SEEDER = "198.51.100.20"
SEEDER_PORT = 6881
TRACKER_PORT = 6969
TRACKER_NAME = "tracker.vgtest.example"
# What qBittorrent/libtorrent and Transmission bootstrap their DHT from.
DHT_NAMES = ("router.bittorrent.com", "router.utorrent.com", "dht.transmissionbt.com",
             "dht.aelitis.com", "dht.libtorrent.org", "router.bitcomet.com",
             "dht.vuze.com")


def make_payload(dirpath, size, name="payload.bin", piece=1 << 20):
    """size bytes of random data in dirpath/name and a v1 torrent for it
    (Transmission 3.00 knows no v2). Returns (torrent bytes, sha256 hex)."""
    os.makedirs(dirpath, exist_ok=True)
    path = os.path.join(dirpath, name)
    h = hashlib.sha256()
    left = size
    with open(path, "wb") as f:
        while left:
            chunk = os.urandom(min(left, 4 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece, lt.create_torrent.v1_only)
    ct.add_tracker(f"http://{TRACKER_NAME}:{TRACKER_PORT}/announce")
    ct.set_creator("vpnguard-bpf tests")
    lt.set_piece_hashes(ct, dirpath)
    return lt.bencode(ct.generate()), h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Swarm:
    def __init__(self, topo, payload_dir, torrent, rate, utp=True):
        self.t = topo
        self.payload_dir = payload_dir
        self.torrent = torrent
        self.info = lt.torrent_info(lt.bdecode(torrent))
        self.infohash = str(self.info.info_hashes().v1)
        self.name = self.info.name()
        self.size = self.info.total_size()
        self.rate = rate
        self.utp = utp
        self.dir = os.path.join(topo.dir, "swarm")
        self.dns_log = os.path.join(self.dir, "dns.jsonl")
        self.status_file = os.path.join(self.dir, "seeder.json")
        self.procs = {}

    def up(self):
        t = self.t
        os.makedirs(self.dir)
        t.inet_addr(TRACKER)
        t.inet_addr(SEEDER, route_only=True)  # else libtorrent binds the seeder to lo
        t.netns_resolv_conf(t.home, t.resolver)
        t.netns_resolv_conf(t.inet, t.resolver)
        self._nft()
        self._dns()
        self._tracker()
        self._seeder()

    def _nft(self):
        t = self.t
        # UDP that came out of the tunnel from the client, DNS left out: DHT and uTP.
        rules = f"""
table inet vgclients {{
	counter udptun {{ }}
	counter tcptun {{ }}
	chain pre {{
		type filter hook prerouting priority -300; policy accept;
		iifname "{t.wg_server}" ip saddr {t.vpn_ip} udp dport != {{ 53, 853, 5353, 5355 }} counter name udptun
		iifname "{t.wg_server}" ip saddr {t.vpn_ip} meta l4proto tcp counter name tcptun
	}}
}}
"""
        r = t.run_inet(["nft", "-f", "-"], input=rules)
        assert r.returncode == 0, r.stderr

    def counters(self):
        r = self.t.run_inet(["nft", "-j", "list", "counters", "table", "inet", "vgclients"])
        return {c["counter"]["name"]: c["counter"]["packets"]
                for c in json.loads(r.stdout)["nftables"] if "counter" in c}

    def _dns(self):
        ready = os.path.join(self.dir, "dns.ready")
        argv = [PY, os.path.join(HERE, "dnsd.py"), "--listen", self.t.resolver,
                "--log", self.dns_log, "--ready", ready, "--map", f"{TRACKER_NAME}={TRACKER}"]
        for n in DHT_NAMES:
            argv += ["--map", f"{n}={SEEDER}"]
        self.procs["dns"] = self._spawn(argv, "dns")
        assert wait_until(lambda: os.path.exists(ready), 20), "the resolver did not start"

    def _tracker(self):
        d = os.path.join(self.dir, "tracker")
        os.makedirs(d)
        with open(os.path.join(d, "whitelist.txt"), "w") as f:
            f.write(self.infohash + "\n")
        # opentracker chroots to its rootdir: the whitelist path is inside it.
        with open(os.path.join(d, "opentracker.conf"), "w") as f:
            f.write(f"access.whitelist /whitelist.txt\ntracker.rootdir {d}\ntracker.user nobody\n")
        self.procs["tracker"] = self._spawn(
            ["opentracker", "-f", os.path.join(d, "opentracker.conf"), "-i", TRACKER,
             "-p", str(TRACKER_PORT), "-P", str(TRACKER_PORT)], "tracker")
        assert wait_until(lambda: self._tcp_open(TRACKER, TRACKER_PORT), 20), \
            "opentracker did not listen"

    def _seeder(self):
        src = os.path.join(self.dir, "seed.torrent")
        with open(src, "wb") as f:
            f.write(self.torrent)
        self.procs["seeder"] = self._spawn(
            [PY, os.path.join(HERE, "seeder.py"), "--torrent", src, "--save-path",
             self.payload_dir, "--listen", f"{SEEDER}:{SEEDER_PORT}", "--rate", str(self.rate),
             "--status", self.status_file, "--dht"] + ([] if self.utp else ["--no-utp"]), "seeder")
        ok = wait_until(lambda: self._tcp_open(SEEDER, SEEDER_PORT)
                        and self.seeder().get("tracker", {}).get("ok", 0) > 0, 30, 0.2)
        assert ok, f"the seeder did not start or announce: {self.seeder()}"

    def _spawn(self, argv, name):
        out = open(os.path.join(self.dir, f"{name}.log"), "ab")
        try:
            return self.t.spawn(argv, netns=self.t.inet, stdout=out, stderr=out)
        finally:
            out.close()

    def _tcp_open(self, host, port):
        s = self.t.socket(self.t.inet)
        s.settimeout(1)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def seeder(self):
        try:
            with open(self.status_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def dns_queries(self):
        out = []
        try:
            with open(self.dns_log) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def down(self):
        for name in ("seeder", "tracker", "dns"):
            p = self.procs.pop(name, None)
            if p is not None:
                self.t.stop(p)

    def log_tail(self, name, n=30):
        try:
            with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""
