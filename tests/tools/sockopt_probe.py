#!/usr/bin/python3
"""sockopt_probe - socket options a guarded program may try, one per run.

    sockopt_probe.py KIND [SPEC] [--hold SECONDS]

Prints exactly one result line: "ok", "errno NAME", or for `mark` the socket's
mark in hex. KIND is the option and the struct it takes; SPEC names the
interface the way that struct does: "any", "ifindex:N" or "addr:A.B.C.D".

  ip_mreq SPEC                 IP_ADD_MEMBERSHIP, struct ip_mreq (addr or any)
  ip_mreqn SPEC                IP_ADD_MEMBERSHIP, struct ip_mreqn
  ip_mreq_source SPEC          IP_ADD_SOURCE_MEMBERSHIP (addr or any)
  mcast_join_group4 SPEC       MCAST_JOIN_GROUP on an IPv4 socket (ifindex or any)
  mcast_join_source_group4 SPEC
  ipv6_join_group SPEC         IPV6_ADD_MEMBERSHIP (ifindex or any)
  mcast_join_group6 SPEC       MCAST_JOIN_GROUP on an IPv6 socket
  ipv6_join_anycast SPEC       IPV6_JOIN_ANYCAST
  ip_multicast_if SPEC         IP_MULTICAST_IF, struct in_addr (addr or any)
  ipv6_multicast_if SPEC       IPV6_MULTICAST_IF (ifindex or any)
  so_mark VALUE                SO_MARK (decimal or 0x hex)
  mark udp|tcp|udp6|ping       the mark a new socket of that kind carries

--hold keeps a membership that long, so the reports the kernel sends for it
can be counted on the far side.
"""
import errno
import socket
import struct
import sys
import time

IP_MULTICAST_IF, IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP = 32, 35, 39
MCAST_JOIN_GROUP, MCAST_JOIN_SOURCE_GROUP = 42, 46
IPV6_MULTICAST_IF, IPV6_ADD_MEMBERSHIP, IPV6_JOIN_ANYCAST = 17, 20, 27
SO_MARK = 36
GROUP4 = "239.192.152.143"          # LSD
GROUP6 = "ff15::efc0:988f"          # LSD over IPv6
SOURCE4 = "198.51.100.1"
ANYCAST6 = "fd00:99::77"


def spec(s):
    """(ifindex, IPv4 address) of SPEC."""
    if s == "any":
        return 0, "0.0.0.0"
    kind, _, v = s.partition(":")
    if kind == "ifindex":
        return int(v), "0.0.0.0"
    if kind == "addr":
        return 0, v
    raise SystemExit(f"bad SPEC {s!r}")


def sockaddr_storage(family, addr):
    if family == socket.AF_INET:
        sa = struct.pack("=H2s4s", socket.AF_INET, b"\0\0", socket.inet_aton(addr))
    else:
        sa = struct.pack("=H2sI16sI", socket.AF_INET6, b"\0\0", 0,
                         socket.inet_pton(socket.AF_INET6, addr), 0)
    return sa + b"\0" * (128 - len(sa))


def group_req(ifindex, family, group, source=None):
    """struct group_req / group_source_req of a 64-bit kernel: ifindex, padding, sockaddrs."""
    body = struct.pack("=I4x", ifindex) + sockaddr_storage(family, group)
    return body + (sockaddr_storage(family, source) if source else b"")


def attempt(kind, arg):
    ifindex, addr = spec(arg) if kind not in ("so_mark", "mark") else (0, None)
    g4, g6 = socket.inet_aton(GROUP4), socket.inet_pton(socket.AF_INET6, GROUP6)
    v4 = lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v6 = lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if kind == "ip_mreq":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, IP_ADD_MEMBERSHIP, g4 + socket.inet_aton(addr))
    elif kind == "ip_mreqn":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, IP_ADD_MEMBERSHIP,
                               g4 + socket.inet_aton(addr) + struct.pack("=i", ifindex))
    elif kind == "ip_mreq_source":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP,
                               g4 + socket.inet_aton(addr) + socket.inet_aton(SOURCE4))
    elif kind == "mcast_join_group4":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, MCAST_JOIN_GROUP,
                               group_req(ifindex, socket.AF_INET, GROUP4))
    elif kind == "mcast_join_source_group4":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP,
                               group_req(ifindex, socket.AF_INET, GROUP4, SOURCE4))
    elif kind == "ipv6_join_group":
        s = v6(); s.setsockopt(socket.IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, g6 + struct.pack("=i", ifindex))
    elif kind == "mcast_join_group6":
        s = v6(); s.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_GROUP,
                               group_req(ifindex, socket.AF_INET6, GROUP6))
    elif kind == "ipv6_join_anycast":
        s = v6(); s.setsockopt(socket.IPPROTO_IPV6, IPV6_JOIN_ANYCAST,
                               socket.inet_pton(socket.AF_INET6, ANYCAST6) + struct.pack("=i", ifindex))
    elif kind == "ip_multicast_if":
        s = v4(); s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_IF, socket.inet_aton(addr))
    elif kind == "ipv6_multicast_if":
        s = v6(); s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex)
    elif kind == "so_mark":
        s = v4(); s.setsockopt(socket.SOL_SOCKET, SO_MARK, int(arg, 0))
    elif kind == "mark":
        family, type_, proto = {
            "udp": (socket.AF_INET, socket.SOCK_DGRAM, 0),
            "tcp": (socket.AF_INET, socket.SOCK_STREAM, 0),
            "udp6": (socket.AF_INET6, socket.SOCK_DGRAM, 0),
            "ping": (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
        }[arg]
        s = socket.socket(family, type_, proto)
        return hex(s.getsockopt(socket.SOL_SOCKET, SO_MARK)), s
    else:
        raise SystemExit(f"unknown KIND {kind!r}")
    return "ok", s


def main(argv):
    hold = 0.0
    if "--hold" in argv:
        i = argv.index("--hold")
        hold = float(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) != 3:
        raise SystemExit(__doc__)
    try:
        line, s = attempt(argv[1], argv[2])
    except OSError as e:
        print(f"errno {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return 1
    print(line, flush=True)
    time.sleep(hold)
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
