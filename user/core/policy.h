/* SPDX-License-Identifier: GPL-2.0 */
/* Policy encoding: command-line words into the map values of vpnguard.h. Pure. */
#ifndef VG_POLICY_H
#define VG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "vpnguard.h"
#include "args.h"

int vg_parse_addr(const char *s, struct vg_addr *a);
int vg_parse_cidr(const char *s, struct vg_cidr *c);
/* Does the union of the prefixes in set hold every address of target? */
bool vg_cidrs_cover(const struct vg_cidr *set, int n, const struct vg_cidr *target);
/* ADDR, ADDR:PORT, [V6ADDR]:PORT or a bare IPv6 address. */
int vg_parse_gateway(const char *s, struct vg_gateway *g);

/*
 * Judges one word of an option that takes an address, CIDR or gateway
 * (--allow, --expect-ip, --dns, --real-ip, --gateway); 0 for any other
 * option. -EINVAL with "FLAG WORD: why" in err.
 */
int vg_word_check(const char *flag, const char *v, char *err, size_t errlen);

/*
 * Builds the policy of an attach from its options: everything but the
 * namespace cookie and cgroup level, which need the kernel. Returns -EINVAL
 * with a message naming the bad word in err.
 */
int vg_policy_build(const struct vg_options *o, struct vg_policy *p, char *err, size_t errlen);

/* An IPv4 subnet as routing rules take it. */
struct vg_prefix4 {
	__u32 addr;   /* network byte order, masked */
	__u8 len;
};

/* The IPv4 subnets of p->allow (IPv6 ones are never steered); returns how many. */
int vg_policy_allow4(const struct vg_policy *p, struct vg_prefix4 *out, int max);

/* Formats without brackets; buf needs INET6_ADDRSTRLEN bytes. */
const char *vg_addr_str(const struct vg_addr *a, char *buf, size_t len);
/* Prefix length of a mask, counted as the family of the network shows it. */
int vg_cidr_prefix(const struct vg_cidr *c);

const char *vg_reason_name(unsigned reason);
const char *vg_hook_name(unsigned hook);
const char *vg_proto_name(unsigned proto);
const char *vg_mode_name(unsigned mode);

#endif
