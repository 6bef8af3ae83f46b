"""Real BitTorrent clients through the vpnguard-bpf kill switch.

Debian's qbittorrent-nox 4.5.2 and transmission-daemon 3.00 run as `nobody` in a
test cgroup in HOME (tests/lib/vgtopo.py), with DHT, LSD, UPnP, NAT-PMP and uTP
on as users run them, and download 200 MiB of random data from a libtorrent
seeder limited to 8 MiB/s, announced by opentracker. Tracker, seeder and the
only resolver HOME knows (the tracker's name and the DHT bootstrap names resolve
to the seeder or tracker, every other name is NXDOMAIN) live in INET on
"Internet" addresses, reached through the WireGuard tunnel. The guard is the
foreground agent:

    vpnguard-bpf attach --cgroup CG --tunnel WG --netns /run/netns/HOME \
                        --dns RESOLVER --log DIR/events.jsonl

Cases, client x routing ("default": the tunnel is HOME's default route;
"split": only the tunnel's own /24 is routed through it, the guard must steer):
  a. the download starts and progresses through the tunnel; the seeder saw only
     the tunnel address 10.66.0.2 as its peer; the client's UDP (DHT, uTP)
     reached the Internet through the tunnel
  b. offwg == 0 on the far side of the veth throughout, IGMP/MLD included, and
     no DNS anywhere but through the tunnel
  c. the VPN killed mid-download (SIGKILL of the client's wireguard-go, held
     down 6 s): zero offwg packets while it is down
  d. tunnel_up(): progress resumes within 10 s over TCP, 20 s over uTP (its resend timer backs
     off through the outage), same client process
  e. the download completes and its sha256 matches
The control (no guard, "default") shows the counters catch a leak: once the
tunnel is dead the client's packets appear on the veth.

Two choices keep (d) about the guard, not the client. qBittorrent's uTP rides
libtorrent 2.0 listen sockets bound to the tunnel device; libtorrent closed them
with the device and did not reopen them on the recreated tunnel, with or without
vpnguard, and a uTP download over them never resumed. Transmission (which never
fell back to TCP here) resumed only after about 45 s with no vpnguard at all
(the outage made leak-free by routing): libtorrent's seeder had dropped the uTP
connection after its 3 resends. So the seeder speaks TCP only to qBittorrent
(which falls back to TCP by itself) and uTP with 12 resends to Transmission;
`-m reference` runs that routing kill switch, no vpnguard, with these settings.
offwg leaves out ICMP errors HOME's kernel sends the VPN server about its own
datagrams while the client's wireguard-go is dead (counted as wgicmp,
tests/lib/vgnft.py).

Run: tests/clients/run.sh [-k 'qbittorrent and split'] (root; pytest-3). Every
figure is printed as a "FIGURE <case>: <name> = <value>" line (-rA shows them
for passing tests too); each check as an "ok"/"FAIL (letter)" line.
"""
import pytest

from scenario import Run

CLIENTS = ("qbittorrent", "transmission")
ROUTINGS = ("default", "split")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("topo", ROUTINGS, indirect=True)
def test_guarded_client(kernel_lock, vg, payload, client, topo):
    rep = Run(topo, client, payload, vg).go()
    bad = rep.failures()
    assert not bad, f"{rep.title}: " + "; ".join(f"({c}) {w}: {d}" for c, w, _, d in bad)


@pytest.mark.parametrize("topo", ["default"], indirect=True)
def test_control_unguarded_leaks(topo, payload):
    """CONTROL: no vpnguard. The same run must show the leak the guard prevents."""
    rep = Run(topo, "qbittorrent", payload, vg=None).go()
    bad = rep.failures()
    assert not bad, f"{rep.title}: " + "; ".join(f"({c}) {w}: {d}" for c, w, _, d in bad)


@pytest.mark.reference
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("topo", ["default"], indirect=True)
def test_reference_routing_killswitch(client, topo, payload):
    """REFERENCE (only with -m reference): no vpnguard; the outage is leak-free by
    routing (the fallback default routes go with the tunnel). Shows what (d) and (e)
    give for the client itself."""
    rep = Run(topo, client, payload, mode="routing").go()
    bad = rep.failures()
    assert not bad, f"{rep.title}: " + "; ".join(f"({c}) {w}: {d}" for c, w, _, d in bad)
