"""The seeder of the real-client tests: libtorrent (python3-libtorrent) in INET.

    seeder.py --torrent T --save-path DIR --listen IP:PORT --rate BYTES_PER_S
              --status FILE [--dht] [--no-utp]

Seeds the torrent from DIR (seed mode: no hash check), rate-limited for every
peer (the default peer-class filter would exempt "local" addresses such as
10.66.0.2), and rewrites FILE (JSON) a few times a second with every peer
address it saw (connections, incoming connections, peer list) and its upload
total. Ends on SIGTERM/SIGINT.
"""
import argparse
import json
import os
import signal
import time

import libtorrent as lt

stop = False


def on_signal(*_):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--save-path", required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--dht", action="store_true")
    ap.add_argument("--no-utp", dest="utp", action="store_false", help="TCP only")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    cat = lt.alert.category_t
    ses = lt.session({
        "listen_interfaces": a.listen,
        "outgoing_interfaces": a.listen.rsplit(":", 1)[0],
        "enable_dht": a.dht, "dht_bootstrap_nodes": "",
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "upload_rate_limit": a.rate,
        "allow_multiple_connections_per_ip": True,
        "unchoke_interval": 2,  # a new peer gets data within 2 s, not 15
        "enable_incoming_utp": a.utp, "enable_outgoing_utp": a.utp,
        # uTP connections outlive a VPN outage of some seconds (the default, 3
        # resends, gives up after about 4 s)
        "utp_num_resends": 12,
        "alert_mask": int(cat.status_notification | cat.peer_notification
                          | cat.connect_notification | cat.error_notification
                          | cat.tracker_notification),
    })
    # Every address in the global class, so the rate limit holds for all peers.
    f = lt.ip_filter()
    f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(f)

    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save_path
    atp.flags |= lt.torrent_flags.seed_mode
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)

    seen = {}      # ip -> how it was seen first
    log = []       # last alerts, for the test's diagnostics
    tracker = {"ok": 0, "errors": 0, "last": ""}
    started = time.monotonic()

    def saw(ip, how):
        if ip and ip not in seen:
            seen[ip] = {"how": how, "t": round(time.monotonic() - started, 2)}

    last_write = 0.0
    while not stop:
        ses.wait_for_alert(200)
        for al in ses.pop_alerts():
            name = type(al).__name__
            ep = getattr(al, "endpoint", None) or getattr(al, "ip", None)
            ip = ep[0] if isinstance(ep, tuple) else None
            if name in ("peer_connect_alert", "incoming_connection_alert",
                        "peer_disconnected_alert", "peer_error_alert"):
                saw(ip, name)
            if name == "tracker_reply_alert":
                tracker["ok"] += 1
            elif name == "tracker_error_alert":
                tracker["errors"] += 1
            if name in ("tracker_reply_alert", "tracker_error_alert",
                        "listen_failed_alert", "listen_succeeded_alert",
                        "peer_connect_alert", "incoming_connection_alert",
                        "peer_disconnected_alert"):
                log.append(f"{time.monotonic() - started:.2f} {name}: {al.message()}")
                tracker["last"] = al.message() if "tracker" in name else tracker["last"]
        del log[:-60]
        now = time.monotonic()
        if now - last_write < 0.25:
            continue
        last_write = now
        peers = []
        for p in h.get_peer_info():
            saw(p.ip[0], "peer_info")
            peers.append({"ip": p.ip[0], "port": p.ip[1], "up": p.total_upload,
                          "outgoing": bool(p.flags & lt.peer_info.outgoing_connection)})
        st = h.status()
        out = {"t": round(now - started, 2), "uploaded": st.total_payload_upload,
               "upload_rate": st.upload_payload_rate, "peers_now": peers,
               "peers_seen": seen, "tracker": tracker, "log": log,
               "dht_nodes": ses.status().dht_nodes if a.dht else 0}
        tmp = a.status + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh)
        os.replace(tmp, a.status)


if __name__ == "__main__":
    main()
