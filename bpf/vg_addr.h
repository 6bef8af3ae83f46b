/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Addresses as both sides hold them: every address is IPv6, an IPv4 one
 * mapped (::ffff:a.b.c.d), words in network order, so a rule is written once
 * for both families. A prefix is held as its masked network and the mask.
 * Included by vpnguard.h, so by the programs and by user/.
 */
#ifndef VG_ADDR_H
#define VG_ADDR_H

#ifndef __bpf__
#include <stdbool.h>
#include <linux/types.h>
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define VG_BE32(x) __builtin_bswap32(x)
#else
#define VG_BE32(x) (x)
#endif

#define VG_ADDR_INLINE static inline __attribute__((always_inline))

struct vg_addr {
	__u32 w[4];
};

struct vg_cidr {
	struct vg_addr net; /* already masked */
	struct vg_addr mask;
};

VG_ADDR_INLINE bool vg_addr_is_v4(const struct vg_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == VG_BE32(0xffff);
}

/* v4: network order, as sockets and packets carry it. */
VG_ADDR_INLINE void vg_addr_from_v4(struct vg_addr *a, __u32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = VG_BE32(0xffff);
	a->w[3] = v4;
}

VG_ADDR_INLINE bool vg_addr_eq(const struct vg_addr *a, const struct vg_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

/* 127.0.0.0/8 or ::1. */
VG_ADDR_INLINE bool vg_addr_is_loopback(const struct vg_addr *a)
{
	if (vg_addr_is_v4(a))
		return (a->w[3] & VG_BE32(0xff000000)) == VG_BE32(0x7f000000);
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == 0 && a->w[3] == VG_BE32(1);
}

VG_ADDR_INLINE bool vg_cidr_contains(const struct vg_cidr *c, const struct vg_addr *a)
{
	return (a->w[0] & c->mask.w[0]) == c->net.w[0] && (a->w[1] & c->mask.w[1]) == c->net.w[1] &&
	       (a->w[2] & c->mask.w[2]) == c->net.w[2] && (a->w[3] & c->mask.w[3]) == c->net.w[3];
}

#endif
