#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""map_watch.py - how long after a command does a pinned tunnel map change?

  map_watch.py PIN --ifname NAME [--timeout S] [--stdin-line LINE] -- CMD [ARG...]

Reads the pinned BPF map PIN (vpnguard's vg_tunnels: key {u64 netns_cookie;
char ifname[16]}, value starting with u32 ifindex) with the bpf(2) syscall,
remembers the ifindex of every entry whose key names NAME, takes the time,
starts CMD, then re-reads the map in a tight loop until one of those ifindexes
changes (or an entry for NAME appears or goes away).  Prints one line:

  changed after_us=N ifindex=OLD->NEW cmd_us=M polls=P
  unchanged after_us=N ifindex=OLD cmd_us=M polls=P      (exit 1, after --timeout)

after_us counts from just before CMD is started (fork+exec included) to the
read that saw the change; cmd_us is how long CMD itself ran.  A poll is one
full read of the map (a few microseconds), so after_us is exact to within
that.

With --stdin-line, CMD is started first and given 0.3 s to get ready (e.g.
`ip -n NS -batch -`, which enters the namespace and waits for commands); the
clock starts when LINE is written to its stdin, so after_us leaves out
process start-up (cmd_us is then the time until CMD exited after its stdin
was closed, -1 if not measured).  Needs root; no traffic of its own.
"""
import ctypes
import os
import platform
import subprocess
import sys
import time

NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD = 1, 4, 7, 15

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    r = libc.syscall(ctypes.c_long(NR_BPF[platform.machine()]), ctypes.c_int(cmd),
                     ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


class ObjGet(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32), ("path_fd", ctypes.c_int32), ("pad", ctypes.c_uint32)]


class Elem(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class InfoByFd(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("name", ctypes.c_char * 16), ("rest", ctypes.c_uint8 * 64)]


class Map:
    def __init__(self, pin):
        path = ctypes.create_string_buffer(pin.encode())
        self.fd = bpf(BPF_OBJ_GET, ObjGet(pathname=ctypes.addressof(path)))
        info = MapInfo()
        bpf(BPF_OBJ_GET_INFO_BY_FD, InfoByFd(bpf_fd=self.fd, info_len=ctypes.sizeof(info),
                                             info=ctypes.addressof(info)))
        self.ks, self.vs = info.key_size, info.value_size
        self.k = ctypes.create_string_buffer(self.ks)
        self.nk = ctypes.create_string_buffer(self.ks)
        self.v = ctypes.create_string_buffer(self.vs)
        self.next_attr = Elem(map_fd=self.fd, key=0, value=ctypes.addressof(self.nk))
        self.look_attr = Elem(map_fd=self.fd, key=ctypes.addressof(self.nk), value=ctypes.addressof(self.v))

    def ifindexes(self, name):
        """{key bytes: ifindex} of the entries whose ifname (key bytes 8..) is name."""
        out = {}
        self.next_attr.key = 0
        while True:
            try:
                bpf(BPF_MAP_GET_NEXT_KEY, self.next_attr)
            except OSError:
                return out
            kb = self.nk.raw
            if kb[8:].split(b"\0", 1)[0] == name:
                try:
                    bpf(BPF_MAP_LOOKUP_ELEM, self.look_attr)
                    out[kb] = int.from_bytes(self.v.raw[:4], sys.byteorder)
                except OSError:
                    pass
            ctypes.memmove(self.k, self.nk, self.ks)
            self.next_attr.key = ctypes.addressof(self.k)


def main():
    args = sys.argv[1:]
    if "--" not in args or len(args) < 4:
        sys.exit(__doc__)
    cmd = args[args.index("--") + 1:]
    opts = args[:args.index("--")]
    pin, name, timeout, line = opts[0], None, 5.0, None
    i = 1
    while i < len(opts):
        if opts[i] == "--ifname":
            name = opts[i + 1].encode()
        elif opts[i] == "--timeout":
            timeout = float(opts[i + 1])
        elif opts[i] == "--stdin-line":
            line = (opts[i + 1] + "\n").encode()
        i += 2
    if not name or not cmd:
        sys.exit(__doc__)
    m = Map(pin)
    if line:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        time.sleep(0.3)
    before = m.ifindexes(name)
    old = ",".join(str(v) for v in before.values()) or "none"
    polls = 0
    t0 = time.monotonic_ns()
    if line:
        os.write(proc.stdin.fileno(), line)
        proc.stdin.close()
    else:
        proc = subprocess.Popen(cmd)
    cmd_ns = None
    while True:
        now = m.ifindexes(name)
        polls += 1
        t = time.monotonic_ns()
        if cmd_ns is None and proc.poll() is not None:
            cmd_ns = time.monotonic_ns() - t0
        if now != before:
            new = ",".join(str(v) for v in now.values()) or "none"
            if cmd_ns is None:
                proc.wait()
                cmd_ns = time.monotonic_ns() - t0
            print("changed after_us=%d ifindex=%s->%s cmd_us=%d polls=%d"
                  % ((t - t0) // 1000, old, new, cmd_ns // 1000, polls))
            sys.exit(0 if proc.returncode == 0 else 2)
        if t - t0 > timeout * 1e9:
            proc.wait()
            cmd_ns = cmd_ns or (time.monotonic_ns() - t0)
            print("unchanged after_us=%d ifindex=%s cmd_us=%d polls=%d" % ((t - t0) // 1000, old, cmd_ns // 1000, polls))
            sys.exit(1)


if __name__ == "__main__":
    main()
