#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""state_write.py - write one guard's vg_state and say when, on the boot clock.

  state_write.py PIN GUARD_ID STATE DEADLINE_NS

Writes {STATE, DEADLINE_NS} (struct vg_state: u32 state, u32 pad, u64
lease_deadline_ns) for GUARD_ID into the pinned map PIN with the bpf(2)
syscall and prints the CLOCK_BOOTTIME nanoseconds taken just before the
write, so that a test can tell how late the programs acted on it (bpftool's
own start-up would blur that by milliseconds). Needs root.
"""
import ctypes
import struct
import sys
import time

from map_watch import BPF_OBJ_GET, Elem, ObjGet, bpf

BPF_MAP_UPDATE_ELEM = 2


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    pin, guard, state, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    path = ctypes.create_string_buffer(pin.encode())
    fd = bpf(BPF_OBJ_GET, ObjGet(pathname=ctypes.addressof(path)))
    key = ctypes.create_string_buffer(struct.pack("=Q", guard), 8)
    value = ctypes.create_string_buffer(struct.pack("=IIQ", state, 0, deadline), 16)
    attr = Elem(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(value), flags=0)
    before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    bpf(BPF_MAP_UPDATE_ELEM, attr)
    print(before)


if __name__ == "__main__":
    main()
