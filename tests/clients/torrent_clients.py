"""The guarded torrent clients: Debian's qbittorrent-nox 4.5.2 and transmission-daemon 3.00.

Each runs as an unprivileged user in a cgroup in HOME with a profile of its own
in the topology's temp dir, DHT, LSD (LPD), UPnP, NAT-PMP and uTP left ON as
users run them, and is driven by its web API on 127.0.0.1 in HOME (the test
talks to it through a socket made in HOME: loopback, which every guard allows).

    c = make_client("qbittorrent", topo, cg, user)
    c.start(); c.add(torrent_bytes); c.progress() -> {"done", "total", "rate", "state"}
"""
import base64
import http.client
import json
import os
import pwd
import uuid

from vgtopo import wait_until


class HomeHTTP(http.client.HTTPConnection):
    """HTTP to 127.0.0.1:port inside HOME, from the test process."""

    def __init__(self, topo, port, timeout=10):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self.topo = topo

    def connect(self):
        s = self.topo.socket(self.topo.home)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = s


class Client:
    name = "?"
    comm = "?"

    def __init__(self, topo, cg, user, peer_port, api_port):
        self.t, self.cg, self.user = topo, cg, user
        self.peer_port, self.api_port = peer_port, api_port
        self.dir = os.path.join(topo.dir, self.name)
        self.download_dir = os.path.join(self.dir, "downloads")
        self.log_path = os.path.join(self.dir, "client.log")
        self.proc = None
        self.hash = None

    def _mkdirs(self, *dirs):
        pw = pwd.getpwnam(self.user)
        for d in (self.dir,) + dirs:
            os.makedirs(d, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o700)

    def _chown_tree(self):
        pw = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)

    def _spawn(self, argv, env):
        log = open(self.log_path, "ab")
        try:
            self.proc = self.t.spawn(["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + argv,
                                     cg=self.cg, netns=self.t.home, user=self.user,
                                     stdout=log, stderr=log)
        finally:
            log.close()

    def _http(self, method, path, body=None, headers=None, timeout=10):
        c = HomeHTTP(self.t, self.api_port, timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            self.t.stop(self.proc, grace=10)
            self.proc = None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def output_file(self, name):
        return os.path.join(self.download_dir, name)


class QBittorrent(Client):
    name = "qbittorrent"
    comm = "qbittorrent-nox"

    def start(self):
        profile = os.path.join(self.dir, "profile")
        conf = os.path.join(profile, "qBittorrent", "config")
        self._mkdirs(self.download_dir, profile)
        os.makedirs(conf, exist_ok=True)
        # Only what must be there before the first start; the rest is set via the API.
        with open(os.path.join(conf, "qBittorrent.conf"), "w") as f:
            f.write(f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\Port={self.peer_port}
Session\\DefaultSavePath={self.download_dir}

[Preferences]
WebUI\\Address=127.0.0.1
WebUI\\Port={self.api_port}
WebUI\\LocalHostAuth=false
""")
        self._chown_tree()
        self._spawn(["qbittorrent-nox", f"--profile={profile}"],
                    {"HOME": self.dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        ok = wait_until(lambda: not self.alive() or self._version(), 60, 0.3)
        assert ok and self.alive(), f"qbittorrent-nox did not come up:\n{self.log_tail()}"
        prefs = {"listen_port": self.peer_port, "save_path": self.download_dir,
                 "dht": True, "lsd": True, "pex": True, "upnp": True,
                 "bittorrent_protocol": 0,  # TCP and uTP
                 "queueing_enabled": False}
        st, _, body = self._form("/api/v2/app/setPreferences", {"json": json.dumps(prefs)})
        assert st == 200, f"setPreferences: {st} {body!r}"
        self.prefs = json.loads(self._http("GET", "/api/v2/app/preferences")[2])
        for k, v in prefs.items():
            assert self.prefs.get(k) == v, f"qBittorrent preference {k}={self.prefs.get(k)}, want {v}"

    def _version(self):
        try:
            st, _, body = self._http("GET", "/api/v2/app/version", timeout=2)
            return st == 200 and body.startswith(b"v")
        except OSError:
            return False

    def _form(self, path, fields, files=None):
        b = uuid.uuid4().hex
        parts = []
        for k, v in fields.items():
            parts.append(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
        for k, (fname, data) in (files or {}).items():
            parts.append(f'--{b}\r\nContent-Disposition: form-data; name="{k}"; filename="{fname}"\r\n'
                         f'Content-Type: application/x-bittorrent\r\n\r\n'.encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{b}--\r\n".encode()
        return self._http("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={b}"})

    def add(self, torrent, infohash):
        self.hash = infohash
        st, _, body = self._form("/api/v2/torrents/add", {"savepath": self.download_dir},
                                 {"torrents": ("t.torrent", torrent)})
        assert st == 200 and body.strip() == b"Ok.", f"torrents/add: {st} {body!r}"
        assert wait_until(lambda: self._info() is not None, 20, 0.3), "torrent not listed"

    def _info(self):
        st, _, body = self._http("GET", f"/api/v2/torrents/info?hashes={self.hash}")
        if st != 200:
            return None
        items = json.loads(body)
        return items[0] if items else None

    def progress(self):
        i = self._info() or {}
        return {"done": i.get("completed", 0), "total": i.get("size", 0),
                "rate": i.get("dlspeed", 0), "state": i.get("state", "?"),
                "complete": i.get("progress", 0) >= 1.0 and i.get("state") not in
                ("checkingDL", "checkingUP", "allocating", "moving")}

    def peers(self):
        st, _, body = self._http("GET", f"/api/v2/sync/torrentPeers?hash={self.hash}")
        return sorted(json.loads(body).get("peers", {}).keys()) if st == 200 else []


class Transmission(Client):
    name = "transmission"
    comm = "transmission-da"

    def start(self):
        conf = os.path.join(self.dir, "config")
        self._mkdirs(self.download_dir, conf)
        settings = {
            "dht-enabled": True, "lpd-enabled": True, "utp-enabled": True, "pex-enabled": True,
            "port-forwarding-enabled": True,  # UPnP and NAT-PMP
            "peer-port": self.peer_port, "peer-port-random-on-start": False,
            "download-dir": self.download_dir, "incomplete-dir-enabled": False,
            "rpc-enabled": True, "rpc-bind-address": "127.0.0.1", "rpc-port": self.api_port,
            "rpc-authentication-required": False, "rpc-whitelist-enabled": True,
            "rpc-whitelist": "127.0.0.1", "rpc-host-whitelist-enabled": False,
            "blocklist-enabled": False, "watch-dir-enabled": False,
            "start-added-torrents": True, "message-level": 2,
        }
        with open(os.path.join(conf, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        self._chown_tree()
        self.session_id = ""
        self._spawn(["transmission-daemon", "-f", "-g", conf],
                    {"HOME": self.dir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        ok = wait_until(lambda: not self.alive() or self._ping(), 60, 0.3)
        assert ok and self.alive(), f"transmission-daemon did not come up:\n{self.log_tail()}"
        s = self.rpc("session-get")["arguments"]
        for k in ("dht-enabled", "lpd-enabled", "utp-enabled", "port-forwarding-enabled"):
            assert s.get(k) is True, f"Transmission {k}={s.get(k)}"

    def _ping(self):
        try:
            self.rpc("session-get", timeout=2)
            return True
        except (OSError, AssertionError, ValueError):
            return False

    def rpc(self, method, timeout=10, **arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            st, hdrs, out = self._http("POST", "/transmission/rpc", body,
                                       {"X-Transmission-Session-Id": self.session_id,
                                        "Content-Type": "application/json"}, timeout)
            if st == 409:  # the CSRF handshake: take the session id and ask again
                self.session_id = hdrs.get("X-Transmission-Session-Id", "")
                continue
            assert st == 200, f"RPC {method}: {st} {out!r}"
            r = json.loads(out)
            assert r.get("result") == "success", f"RPC {method}: {r}"
            return r
        raise AssertionError(f"RPC {method}: no session id")

    def add(self, torrent, infohash):
        self.hash = infohash
        self.rpc("torrent-add", metainfo=base64.b64encode(torrent).decode(),
                 **{"download-dir": self.download_dir})

    def progress(self):
        ts = self.rpc("torrent-get", ids=[self.hash], fields=[
            "haveValid", "haveUnchecked", "sizeWhenDone", "rateDownload", "status",
            "percentDone", "errorString", "leftUntilDone"])["arguments"]["torrents"]
        i = ts[0] if ts else {}
        return {"done": i.get("haveValid", 0) + i.get("haveUnchecked", 0),
                "total": i.get("sizeWhenDone", 0), "rate": i.get("rateDownload", 0),
                "state": f"{i.get('status', '?')}{' ' + i['errorString'] if i.get('errorString') else ''}",
                "complete": bool(ts) and i.get("leftUntilDone", 1) == 0
                and i.get("percentDone", 0) >= 1.0 and i.get("status") in (0, 5, 6)}

    def peers(self):
        ts = self.rpc("torrent-get", ids=[self.hash], fields=["peers"])["arguments"]["torrents"]
        return sorted(f"{p['address']}:{p['port']}" for p in (ts[0]["peers"] if ts else []))


CLIENTS = {"qbittorrent": QBittorrent, "transmission": Transmission}


def make_client(name, topo, cg, user, peer_port=51413, api_port=18080):
    return CLIENTS[name](topo, cg, user, peer_port, api_port)
