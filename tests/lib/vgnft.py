"""vgnft - the counters of the test world, an nftables table in INET.

Prerouting at priority -310 (raw-10) sees packets as they arrive, before
routing, rp_filter or sockets can drop them; ARP is not IP and never shows up
in an inet table. topology.sh's counters, unchanged:

  leak4   IPv4 on the veth for 198.51.100.0/24 or 203.0.113.0/24 (the leaks)
  leak6   IPv6 on the veth, neighbour discovery and MLD left out
  tunnel  what came out of the tunnel (the handshake trigger left out)
  lan     IPv4 to the LAN net on the veth       wg      WireGuard transport
  vpnsrc  the tunnel's address on the veth      stray4  other IPv4 on the veth

and, for the real-client tests:

  offwg   every IPv4/IPv6 packet on the veth that is not WireGuard transport
          (UDP to gw_ip:51820), IGMP and MLD included; only ICMPv6 133-137
          (router/neighbour discovery, redirects) and wgicmp left out
  wgicmp  ICMP errors from HOME to the VPN endpoint about the server's own
          WireGuard datagrams (inner UDP from port 51820): HOME's kernel
          answering a dead VPN client's port while the server still sends,
          carrying nothing of any client
  igmp    IGMP on the veth           mld     MLD (130, 131, 132, 143) on the veth
  dnsveth DNS ports (53 853 5353 5355, UDP or TCP) on the veth
  dnstun  DNS ports that came out of the tunnel
"""
import json

HS_PORT = 51819  # the handshake trigger's port, left out of the counters
DNS_PORTS = "{ 53, 853, 5353, 5355 }"
# "igmp" and "mld" are nft keywords: the counters are igmp4 and mld6 in nft.
_ALIAS = {"igmp4": "igmp", "mld6": "mld"}
TABLE = "vgtopo"


def rules(t):
    """The table for topology t (a vgtopo.Topology)."""
    return f"""
table inet {TABLE} {{
	counter leak4 {{ }}
	counter leak6 {{ }}
	counter tunnel {{ }}
	counter lan {{ }}
	counter wg {{ }}
	counter vpnsrc {{ }}
	counter stray4 {{ }}
	counter offwg {{ }}
	counter igmp4 {{ }}
	counter mld6 {{ }}
	counter dnsveth {{ }}
	counter dnstun {{ }}
	counter wgicmp {{ }}

	chain pre {{
		type filter hook prerouting priority -310; policy accept;
		# The topology's own handshake trigger is not test traffic.
		iifname "{t.wg_server}" ip daddr {t.vpn_server_ip} udp dport {HS_PORT} accept
		iifname "{t.wg_server}" meta l4proto {{ tcp, udp }} th dport {DNS_PORTS} counter name dnstun
		iifname "{t.wg_server}" counter name tunnel accept
		iifname != "{t.veth_inet}" accept
		ip protocol igmp counter name igmp4
		icmpv6 type {{ mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report }} counter name mld6
		meta l4proto {{ tcp, udp }} th dport {DNS_PORTS} counter name dnsveth
		jump offwg
		meta nfproto ipv6 goto home6
		# WireGuard's own transport is the tunnel, not a leak.
		ip daddr {t.gw_ip} udp dport {t.wg_port} counter name wg accept
		# The tunnel's address on the wrong wire (also counted below by destination).
		ip saddr {t.vpn_net} counter name vpnsrc
		ip daddr {t.lan_net} counter name lan accept
		ip daddr {{ {t.inet_net}, {t.resolver_net} }} counter name leak4 accept
		meta nfproto ipv4 counter name stray4
	}}

	chain offwg {{
		ip daddr {t.gw_ip} udp dport {t.wg_port} return
		# inner IPv4 protocol (ICMP header 8 bytes + 9) UDP, inner source port 51820
		ip daddr {t.gw_ip} icmp type destination-unreachable @th,136,8 17 @th,224,16 {t.wg_port} counter name wgicmp return
		icmpv6 type {{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect }} return
		meta nfproto {{ ipv4, ipv6 }} counter name offwg
	}}

	chain home6 {{
		# The kernel's own neighbour discovery and MLD chatter is not traffic.
		icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report }} return
		counter name leak6
	}}
}}
"""


def parse(text, what="packets"):
    """`nft -j list counters table inet vgtopo` -> {name: packets}."""
    out = {}
    for item in json.loads(text).get("nftables", []):
        c = item.get("counter")
        if c:
            out[_ALIAS.get(c["name"], c["name"])] = c[what]
    return out
