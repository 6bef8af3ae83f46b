// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of user/core/policy.c: addresses, CIDRs and gateways into the
 * network-byte-order values of bpf/vpnguard.h (IPv4 held as ::ffff:a.b.c.d),
 * vg_policy_build, and the name tables.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "args.h"
#include "policy.h"

#define ERRLEN 256

/* The four words of an address or mask, in host order, for readable checks. */
static void assert_words(const struct vg_addr *a, uint32_t w0, uint32_t w1, uint32_t w2,
			 uint32_t w3)
{
	uint32_t want[4] = { w0, w1, w2, w3 };

	for (int i = 0; i < 4; i++)
		if (ntohl(a->w[i]) != want[i])
			fail_msg("word %d is %08x, want %08x (all: %08x %08x %08x %08x)", i,
				 ntohl(a->w[i]), want[i], ntohl(a->w[0]), ntohl(a->w[1]),
				 ntohl(a->w[2]), ntohl(a->w[3]));
}

static void assert_bytes(const void *p, const uint8_t want[16])
{
	const uint8_t *b = p;

	for (int i = 0; i < 16; i++)
		if (b[i] != want[i])
			fail_msg("byte %d is %02x, want %02x", i, b[i], want[i]);
}

/* Each word of list must be refused with -EINVAL by the parser parse wraps. */
static int try_addr(const char *s)
{
	struct vg_addr a;

	return vg_parse_addr(s, &a);
}

static int try_cidr(const char *s)
{
	struct vg_cidr c;

	return vg_parse_cidr(s, &c);
}

static int try_gateway(const char *s)
{
	struct vg_gateway g;

	return vg_parse_gateway(s, &g);
}

static void expect_refused_n(int (*parse)(const char *), const char *what,
			     const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (parse(list[i]) != -EINVAL)
			fail_msg("%s '%s' accepted", what, list[i]);
}

#define expect_refused(parse, what, list) \
	expect_refused_n(parse, what, list, sizeof(list) / sizeof(list[0]))

static struct vg_addr addr(const char *s)
{
	struct vg_addr a;

	if (vg_parse_addr(s, &a))
		fail_msg("address '%s' refused", s);
	return a;
}

static struct vg_cidr cidr(const char *s)
{
	struct vg_cidr c;

	if (vg_parse_cidr(s, &c))
		fail_msg("CIDR '%s' refused", s);
	return c;
}

static struct vg_gateway gateway(const char *s)
{
	struct vg_gateway g;

	if (vg_parse_gateway(s, &g))
		fail_msg("gateway '%s' refused", s);
	return g;
}

static void assert_addr_str(const struct vg_addr *a, const char *want)
{
	char buf[INET6_ADDRSTRLEN];

	assert_non_null(vg_addr_str(a, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

/* ---- addresses ---- */

static void test_addr_v4(void **state)
{
	(void)state;
	struct vg_addr a = addr("192.0.2.1");
	static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };

	assert_words(&a, 0, 0, 0xffff, 0xc0000201);
	assert_bytes(a.w, want);
	assert_true(vg_addr_is_v4(&a));
	assert_addr_str(&a, "192.0.2.1");

	a = addr("0.0.0.0");
	assert_words(&a, 0, 0, 0xffff, 0);
	assert_true(vg_addr_is_v4(&a));
	a = addr("255.255.255.255");
	assert_words(&a, 0, 0, 0xffff, 0xffffffff);
	a = addr("127.0.0.1");
	assert_addr_str(&a, "127.0.0.1");
}

static void test_addr_v6(void **state)
{
	(void)state;
	struct vg_addr a = addr("2001:db8::1");
	static const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					  0, 0, 0, 0, 0, 0, 0, 1 };

	assert_words(&a, 0x20010db8, 0, 0, 1);
	assert_bytes(a.w, want);
	assert_false(vg_addr_is_v4(&a));
	assert_addr_str(&a, "2001:db8::1");

	a = addr("::1");
	assert_words(&a, 0, 0, 0, 1);
	assert_false(vg_addr_is_v4(&a));
	assert_addr_str(&a, "::1");

	a = addr("::");
	assert_words(&a, 0, 0, 0, 0);
	assert_false(vg_addr_is_v4(&a));
	assert_addr_str(&a, "::");

	a = addr("FD00:0:0:0:0:0:0:AbCd");
	assert_words(&a, 0xfd000000, 0, 0, 0xabcd);
	assert_addr_str(&a, "fd00::abcd");

	/* Not mapped: ::ffff:0:0:0 style neighbours and the old compatible form. */
	a = addr("::fffe:c000:201");
	assert_false(vg_addr_is_v4(&a));
	a = addr("::192.0.2.1");
	assert_false(vg_addr_is_v4(&a));
	a = addr("0:0:1::ffff:c000:201");
	assert_false(vg_addr_is_v4(&a));
}

static void test_addr_mapped(void **state)
{
	(void)state;
	struct vg_addr v4 = addr("192.0.2.1");
	struct vg_addr m1 = addr("::ffff:192.0.2.1");
	struct vg_addr m2 = addr("::ffff:c000:201");
	struct vg_addr m3 = addr("0:0:0:0:0:FFFF:192.0.2.1");

	/* Mapped IPv6 is the IPv4 address: the same bits, judged as IPv4. */
	assert_memory_equal(&v4, &m1, sizeof(v4));
	assert_memory_equal(&v4, &m2, sizeof(v4));
	assert_memory_equal(&v4, &m3, sizeof(v4));
	assert_true(vg_addr_is_v4(&m1));
	assert_addr_str(&m1, "192.0.2.1");
	assert_addr_str(&m2, "192.0.2.1");
}

static void test_addr_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", " 1.2.3.4", "1.2.3.4 ",
		"1.2.3.4/32", "1.2.3.4:53", "::g", ":::", "1::2::3", "[::1]", "fe80::1%eth0",
		"localhost", "0x7f000001", "2001:db8::1/64", "1.2.3.4\n",
	};

	expect_refused(try_addr, "address", bad);
}

static void test_addr_str_small_buffer(void **state)
{
	(void)state;
	struct vg_addr a = addr("192.0.2.123");
	char buf[8];

	assert_null(vg_addr_str(&a, buf, sizeof(buf)));
	a = addr("2001:db8::1");
	assert_null(vg_addr_str(&a, buf, sizeof(buf)));
}

/* ---- CIDRs ---- */

static void test_cidr_v4(void **state)
{
	(void)state;
	struct vg_cidr c = cidr("192.168.1.0/24");
	static const uint8_t mask24[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };

	assert_words(&c.net, 0, 0, 0xffff, 0xc0a80100);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffff00);
	assert_bytes(c.mask.w, mask24);
	assert_int_equal(vg_cidr_prefix(&c), 24);

	/* No prefix: one host. */
	c = cidr("10.1.2.3");
	assert_words(&c.net, 0, 0, 0xffff, 0x0a010203);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	assert_int_equal(vg_cidr_prefix(&c), 32);

	c = cidr("10.1.2.3/32");
	assert_words(&c.net, 0, 0, 0xffff, 0x0a010203);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	assert_int_equal(vg_cidr_prefix(&c), 32);

	c = cidr("172.16.0.0/12");
	assert_words(&c.net, 0, 0, 0xffff, 0xac100000);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xfff00000);
	assert_int_equal(vg_cidr_prefix(&c), 12);

	/* A leading zero in the prefix is still decimal. */
	c = cidr("10.0.0.0/08");
	assert_int_equal(vg_cidr_prefix(&c), 8);
}

static void test_cidr_v4_zero(void **state)
{
	(void)state;
	struct vg_cidr c = cidr("0.0.0.0/0");

	/* Every IPv4 address, and only those: the ::ffff:0:0/96 block. */
	assert_words(&c.net, 0, 0, 0xffff, 0);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0);
	assert_int_equal(vg_cidr_prefix(&c), 0);
	assert_true(vg_addr_is_v4(&c.net));

	/* Host bits of /0 are all host bits. */
	c = cidr("203.0.113.9/0");
	assert_words(&c.net, 0, 0, 0xffff, 0);
	assert_int_equal(vg_cidr_prefix(&c), 0);
}

static void test_cidr_host_bits_masked(void **state)
{
	(void)state;
	struct vg_cidr c = cidr("192.168.1.5/24");
	struct vg_cidr d = cidr("192.168.1.0/24");

	assert_memory_equal(&c, &d, sizeof(c));
	assert_addr_str(&c.net, "192.168.1.0");

	c = cidr("10.200.3.4/8");
	assert_addr_str(&c.net, "10.0.0.0");
	c = cidr("10.255.255.255/9");
	assert_addr_str(&c.net, "10.128.0.0");
	c = cidr("10.1.2.255/31");
	assert_addr_str(&c.net, "10.1.2.254");

	c = cidr("2001:db8:1:2:3:4:5:6/64");
	assert_words(&c.net, 0x20010db8, 0x00010002, 0, 0);
	assert_addr_str(&c.net, "2001:db8:1:2::");
	c = cidr("fdff:ffff::1/7");
	assert_words(&c.net, 0xfc000000, 0, 0, 0);

	/* The network is always inside its own mask. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(c.net.w[i] & ~c.mask.w[i], 0);
}

static void test_cidr_v6(void **state)
{
	(void)state;
	struct vg_cidr c = cidr("fd00::/8");

	assert_words(&c.net, 0xfd000000, 0, 0, 0);
	assert_words(&c.mask, 0xff000000, 0, 0, 0);
	assert_int_equal(vg_cidr_prefix(&c), 8);
	assert_false(vg_addr_is_v4(&c.net));

	c = cidr("::/0");
	assert_words(&c.net, 0, 0, 0, 0);
	assert_words(&c.mask, 0, 0, 0, 0);
	assert_int_equal(vg_cidr_prefix(&c), 0);

	c = cidr("2001:db8::1/0");
	assert_words(&c.net, 0, 0, 0, 0);
	assert_words(&c.mask, 0, 0, 0, 0);

	c = cidr("2001:db8::1/128");
	assert_words(&c.net, 0x20010db8, 0, 0, 1);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	assert_int_equal(vg_cidr_prefix(&c), 128);

	/* No prefix: one host. */
	c = cidr("::1");
	assert_words(&c.net, 0, 0, 0, 1);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
	assert_int_equal(vg_cidr_prefix(&c), 128);

	/* An IPv6 prefix is not limited to 32 by the dotted tail of an address. */
	c = cidr("64:ff9b::/96");
	assert_words(&c.net, 0x0064ff9b, 0, 0, 0);
	assert_words(&c.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0);
	assert_int_equal(vg_cidr_prefix(&c), 96);
}

static void test_cidr_mapped(void **state)
{
	(void)state;
	struct vg_cidr m = cidr("::ffff:10.0.0.0/104");
	struct vg_cidr v = cidr("10.0.0.0/8");

	/* The mapped way of writing 10.0.0.0/8 is 10.0.0.0/8. */
	assert_memory_equal(&m, &v, sizeof(m));
	assert_words(&m.net, 0, 0, 0xffff, 0x0a000000);
	assert_words(&m.mask, 0xffffffff, 0xffffffff, 0xffffffff, 0xff000000);
	/* Counted as the family the network shows: IPv4. */
	assert_int_equal(vg_cidr_prefix(&m), 8);

	/* Host bits masked in the mapped form too. */
	m = cidr("::ffff:10.1.2.3/104");
	assert_memory_equal(&m, &v, sizeof(m));
	m = cidr("::ffff:a01:203/104");
	assert_memory_equal(&m, &v, sizeof(m));

	/* A mapped host without a prefix is an IPv4 /32. */
	m = cidr("::ffff:192.0.2.1");
	v = cidr("192.0.2.1/32");
	assert_memory_equal(&m, &v, sizeof(m));
	assert_int_equal(vg_cidr_prefix(&m), 32);

	/* ::ffff:0:0/96 is every IPv4 address. */
	m = cidr("::ffff:0.0.0.0/96");
	v = cidr("0.0.0.0/0");
	assert_memory_equal(&m, &v, sizeof(m));
	assert_int_equal(vg_cidr_prefix(&m), 0);

	/* The mapped form takes IPv6 prefixes: up to 128, not 32. */
	m = cidr("::ffff:10.0.0.1/128");
	v = cidr("10.0.0.1/32");
	assert_memory_equal(&m, &v, sizeof(m));
}

static void test_cidr_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/abc", "10.0.0.0/", "10.0.0.0/+8",
		"10.0.0.0/ 8", "10.0.0.0 /8", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0/8/8",
		"10.0.0.0/8x", "10.0.0.0/0x8", "10.0.0.0/8.0", "10.0.0.0/4294967304",
		"10.0.0.0/18446744073709551624", "10.0.0.0/99999999999999999999999",
		"10.0.0.0/104", "", " ", "/", "/8", "/0", "10.0.0/8", "10.0.0.256/8",
		"fd00::/129", "fd00::/-0", "fd00::/", "fd00:::/8", "::ffff:10.0.0.0/129",
		"[fd00::]/8", "fd00::%eth0/8", "10.0.0.0\\8", "10.0.0.0/8\n",
		/* Longer than any address plus prefix. */
		"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/64",
	};

	expect_refused(try_cidr, "CIDR", bad);
}

/*
 * strtoul() skips any leading white space; parse_uint() refuses a leading
 * ' ' but lets a tab, newline, CR, VT or FF through, so "10.0.0.0/\t8" is
 * taken as /8 and "10.0.0.1:\t80" as port 80.
 */
static void test_numbers_leading_whitespace(void **state)
{
	(void)state;
	static const char *const bad_cidr[] = {
		"10.0.0.0/\t8", "10.0.0.0/\n8", "fd00::/\v8", "10.0.0.0/\r24", "10.0.0.0/\f24",
	};
	static const char *const bad_gw[] = {
		"10.0.0.1:\t80", "[2001:db8::1]:\n443", "10.0.0.1:\r1080",
	};

	expect_refused(try_cidr, "CIDR", bad_cidr);
	expect_refused(try_gateway, "gateway", bad_gw);
}

/* Expected mask words (host order) of a few prefixes. */
static void test_cidr_mask_words(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint32_t w[4];
		int prefix;
	} t[] = {
		{ "10.0.0.0/1", { ~0u, ~0u, ~0u, 0x80000000 }, 1 },
		{ "10.0.0.0/7", { ~0u, ~0u, ~0u, 0xfe000000 }, 7 },
		{ "10.0.0.0/16", { ~0u, ~0u, ~0u, 0xffff0000 }, 16 },
		{ "10.0.0.0/17", { ~0u, ~0u, ~0u, 0xffff8000 }, 17 },
		{ "10.0.0.0/25", { ~0u, ~0u, ~0u, 0xffffff80 }, 25 },
		{ "10.0.0.0/31", { ~0u, ~0u, ~0u, 0xfffffffe }, 31 },
		{ "::/1", { 0x80000000, 0, 0, 0 }, 1 },
		{ "::/31", { 0xfffffffe, 0, 0, 0 }, 31 },
		{ "::/32", { ~0u, 0, 0, 0 }, 32 },
		{ "::/33", { ~0u, 0x80000000, 0, 0 }, 33 },
		{ "::/48", { ~0u, 0xffff0000, 0, 0 }, 48 },
		{ "::/64", { ~0u, ~0u, 0, 0 }, 64 },
		{ "::/65", { ~0u, ~0u, 0x80000000, 0 }, 65 },
		{ "::/95", { ~0u, ~0u, 0xfffffffe, 0 }, 95 },
		{ "::/97", { ~0u, ~0u, ~0u, 0x80000000 }, 97 },
		{ "::/127", { ~0u, ~0u, ~0u, 0xfffffffe }, 127 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct vg_cidr c = cidr(t[i].s);

		assert_words(&c.mask, t[i].w[0], t[i].w[1], t[i].w[2], t[i].w[3]);
		assert_int_equal(vg_cidr_prefix(&c), t[i].prefix);
	}

	/* The raw bytes, as the BPF side compares them. */
	struct vg_cidr c = cidr("2001:db8::/65");
	static const uint8_t want65[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0x80, 0, 0, 0, 0, 0, 0, 0 };
	assert_bytes(c.mask.w, want65);

	c = cidr("10.0.0.0/20");
	static const uint8_t want20[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0 };
	assert_bytes(c.mask.w, want20);
}

/* vg_cidr_prefix gives back the prefix, and "net/prefix" parses to the same value. */
static void test_cidr_prefix_round_trip(void **state)
{
	(void)state;
	char in[80], out[80], buf[INET6_ADDRSTRLEN];

	for (int n = 0; n <= 32; n++) {
		snprintf(in, sizeof(in), "203.0.113.77/%d", n);
		struct vg_cidr c = cidr(in);

		assert_int_equal(vg_cidr_prefix(&c), n);
		assert_non_null(vg_addr_str(&c.net, buf, sizeof(buf)));
		snprintf(out, sizeof(out), "%s/%d", buf, vg_cidr_prefix(&c));
		struct vg_cidr d = cidr(out);
		assert_memory_equal(&c, &d, sizeof(c));

		/* The same network written mapped, with the prefix plus 96. */
		snprintf(in, sizeof(in), "::ffff:203.0.113.77/%d", n + 96);
		d = cidr(in);
		assert_memory_equal(&c, &d, sizeof(c));
	}
	for (int n = 0; n <= 128; n++) {
		snprintf(in, sizeof(in), "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/%d", n);
		struct vg_cidr c = cidr(in);

		assert_int_equal(vg_cidr_prefix(&c), n);
		assert_non_null(vg_addr_str(&c.net, buf, sizeof(buf)));
		snprintf(out, sizeof(out), "%s/%d", buf, vg_cidr_prefix(&c));
		struct vg_cidr d = cidr(out);
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

/* ---- gateways ---- */

static void test_gateway_v4(void **state)
{
	(void)state;
	struct vg_gateway g = gateway("10.0.0.1");

	assert_words(&g.addr, 0, 0, 0xffff, 0x0a000001);
	assert_int_equal(g.port, 0); /* any port */

	g = gateway("10.0.0.1:51820");
	assert_words(&g.addr, 0, 0, 0xffff, 0x0a000001);
	assert_int_equal(ntohs(g.port), 51820);
	/* Network byte order: the high byte first in memory. */
	assert_int_equal(((uint8_t *)&g.port)[0], 51820 >> 8);
	assert_int_equal(((uint8_t *)&g.port)[1], 51820 & 0xff);

	g = gateway("10.0.0.1:1");
	assert_int_equal(ntohs(g.port), 1);
	g = gateway("10.0.0.1:65535");
	assert_int_equal(ntohs(g.port), 65535);
	g = gateway("10.0.0.1:080");
	assert_int_equal(ntohs(g.port), 80);
}

static void test_gateway_v6(void **state)
{
	(void)state;
	struct vg_gateway g = gateway("[2001:db8::1]:443");

	assert_words(&g.addr, 0x20010db8, 0, 0, 1);
	assert_int_equal(ntohs(g.port), 443);

	/* Bare IPv6: more than one colon is an address, not a port. */
	g = gateway("2001:db8::1");
	assert_words(&g.addr, 0x20010db8, 0, 0, 1);
	assert_int_equal(g.port, 0);
	g = gateway("::1");
	assert_words(&g.addr, 0, 0, 0, 1);
	assert_int_equal(g.port, 0);

	/* Brackets without a port. */
	g = gateway("[2001:db8::1]");
	assert_words(&g.addr, 0x20010db8, 0, 0, 1);
	assert_int_equal(g.port, 0);

	g = gateway("[::1]:65535");
	assert_int_equal(ntohs(g.port), 65535);
}

static void test_gateway_mapped(void **state)
{
	(void)state;
	struct vg_gateway g = gateway("::ffff:10.0.0.1");
	struct vg_gateway v = gateway("10.0.0.1");

	assert_memory_equal(&g, &v, sizeof(g));
	g = gateway("[::ffff:10.0.0.1]:1080");
	v = gateway("10.0.0.1:1080");
	assert_memory_equal(&g, &v, sizeof(g));
	assert_true(vg_addr_is_v4(&g.addr));
}

/* The whole struct is a map value: padding must be zero, whatever was there before. */
static void test_gateway_padding_zeroed(void **state)
{
	(void)state;
	struct vg_gateway g;

	memset(&g, 0xa5, sizeof(g));
	assert_int_equal(vg_parse_gateway("[2001:db8::1]:443", &g), 0);
	for (size_t i = 0; i < sizeof(g.pad) / sizeof(g.pad[0]); i++)
		assert_int_equal(g.pad[i], 0);
	memset(&g, 0xa5, sizeof(g));
	assert_int_equal(vg_parse_gateway("10.0.0.1", &g), 0);
	assert_int_equal(g.port, 0);
	for (size_t i = 0; i < sizeof(g.pad) / sizeof(g.pad[0]); i++)
		assert_int_equal(g.pad[i], 0);
}

static void test_gateway_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* ports */
		"10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:99999", "10.0.0.1:4294967297",
		"10.0.0.1:", "10.0.0.1:-1", "10.0.0.1:+80", "10.0.0.1:80x", "10.0.0.1: 80",
		"10.0.0.1:80 ", "10.0.0.1:0x50", "10.0.0.1:http", "10.0.0.1:80:90",
		"[2001:db8::1]:0", "[2001:db8::1]:65536", "[2001:db8::1]:", "[::1]:-1",
		/* brackets */
		"[2001:db8::1", "2001:db8::1]", "2001:db8::1]:80", "[2001:db8::1]80",
		"[2001:db8::1]]:80", "[[2001:db8::1]]:80", "[]", "[]:80", "[", "]", "[:80",
		"[2001:db8::1]:80]", "[10.0.0.1:80]", "[2001:db8::1]x", "[::1]x8080", "[::1]18080",
		/* addresses */
		"", ":", ":80", "host:80", "10.0.0:80", "10.0.0.256", "10.0.0.1/32",
		"2001:db8::g", " 10.0.0.1", "10.0.0.1 ", "fe80::1%eth0",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
	};

	expect_refused(try_gateway, "gateway", bad);
}

/* ---- vg_policy_build ---- */

static void test_policy_build_tunnel(void **state)
{
	(void)state;
	struct vg_options o = { 0 };
	struct vg_policy p;
	char err[ERRLEN] = "";

	o.cmd = VG_CMD_ATTACH;
	o.cgroups[o.n_cgroups++] = "/a";
	o.tunnel = "wg0";
	o.allows[o.n_allows++] = "192.168.1.7/24";
	o.allows[o.n_allows++] = "fd00::/8";
	o.dns[o.n_dns++] = "10.2.0.1";

	memset(&p, 0xa5, sizeof(p));
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.mode, VG_MODE_TUNNEL);
	assert_string_equal(p.tunnel, "wg0");
	assert_int_equal(p.n_allow, 2);
	assert_int_equal(p.n_dns, 1);
	assert_int_equal(p.n_gw, 0);
	/* Left for the kernel side to fill. */
	assert_int_equal(p.netns_cookie, 0);
	/* No --fwmark: the loader picks the mark and table. */
	assert_int_equal(p.fwmark, 0);
	assert_int_equal(p.route_table, 0);

	struct vg_cidr c = cidr("192.168.1.0/24");
	assert_memory_equal(&p.allow[0], &c, sizeof(c));
	c = cidr("fd00::/8");
	assert_memory_equal(&p.allow[1], &c, sizeof(c));
	struct vg_addr a = addr("10.2.0.1");
	assert_memory_equal(&p.dns[0], &a, sizeof(a));

	/* Unused slots and the tail of the name are zero. */
	static const struct vg_cidr zc;
	static const struct vg_gateway zg;
	for (int i = 2; i < VG_MAX_ALLOW; i++)
		assert_memory_equal(&p.allow[i], &zc, sizeof(zc));
	for (int i = 0; i < VG_MAX_GW; i++)
		assert_memory_equal(&p.gw[i], &zg, sizeof(zg));
	for (int i = 3; i < VG_IFNAMSIZ; i++)
		assert_int_equal(p.tunnel[i], 0);
}

static void test_policy_build_gateway(void **state)
{
	(void)state;
	struct vg_options o = { 0 };
	struct vg_policy p;
	char err[ERRLEN] = "";

	o.cmd = VG_CMD_ATTACH;
	o.cgroups[o.n_cgroups++] = "/a";
	o.gateways[o.n_gateways++] = "10.0.0.1:1080";
	o.gateways[o.n_gateways++] = "[fd00::1]:3128";
	o.gateways[o.n_gateways++] = "10.0.0.2";

	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.mode, VG_MODE_GATEWAY);
	assert_int_equal(p.n_gw, 3);
	assert_int_equal(p.n_allow, 0);
	assert_int_equal(p.n_dns, 0);
	assert_int_equal(p.tunnel[0], 0);
	assert_words(&p.gw[0].addr, 0, 0, 0xffff, 0x0a000001);
	assert_int_equal(ntohs(p.gw[0].port), 1080);
	assert_words(&p.gw[1].addr, 0xfd000000, 0, 0, 1);
	assert_int_equal(ntohs(p.gw[1].port), 3128);
	assert_words(&p.gw[2].addr, 0, 0, 0xffff, 0x0a000002);
	assert_int_equal(p.gw[2].port, 0);
}

static void test_policy_build_full(void **state)
{
	(void)state;
	static char words[VG_MAX_ALLOW + VG_MAX_DNS + VG_MAX_GW][32];
	struct vg_options o = { 0 };
	struct vg_policy p;
	char err[ERRLEN] = "";
	int w = 0;

	o.cmd = VG_CMD_ATTACH;
	o.tunnel = "abcdefghijklmno"; /* 15: the longest name */
	for (int i = 0; i < VG_MAX_ALLOW; i++) {
		snprintf(words[w], sizeof(words[w]), "10.%d.0.0/16", i);
		o.allows[o.n_allows++] = words[w++];
	}
	for (int i = 0; i < VG_MAX_DNS; i++) {
		snprintf(words[w], sizeof(words[w]), "fd00::%d", i + 1);
		o.dns[o.n_dns++] = words[w++];
	}
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.n_allow, VG_MAX_ALLOW);
	assert_int_equal(p.n_dns, VG_MAX_DNS);
	assert_string_equal(p.tunnel, "abcdefghijklmno");
	assert_words(&p.allow[VG_MAX_ALLOW - 1].net, 0, 0, 0xffff, 0x0a0f0000);
	assert_words(&p.dns[VG_MAX_DNS - 1], 0xfd000000, 0, 0, VG_MAX_DNS);

	struct vg_options g = { 0 };
	g.cmd = VG_CMD_ATTACH;
	for (int i = 0; i < VG_MAX_GW; i++) {
		snprintf(words[w], sizeof(words[w]), "192.0.2.%d:%d", i + 1, 1000 + i);
		g.gateways[g.n_gateways++] = words[w++];
	}
	assert_int_equal(vg_policy_build(&g, &p, err, sizeof(err)), 0);
	assert_int_equal(p.mode, VG_MODE_GATEWAY);
	assert_int_equal(p.n_gw, VG_MAX_GW);
	assert_int_equal(ntohs(p.gw[VG_MAX_GW - 1].port), 1000 + VG_MAX_GW - 1);
}

/* From the command line to the policy, as attach does it. */
static void test_policy_build_from_args(void **state)
{
	(void)state;
	char *argv[] = { "vpnguard-bpf", "attach", "--cgroup", "/a", "--tunnel", "wg0",
			 "--netns", "/run/netns/vpn", "--allow", "192.168.1.0/24",
			 "--allow", "::ffff:172.17.0.0/112", "--dns", "::ffff:10.2.0.1",
			 "--no-agent", NULL };
	struct vg_options o;
	struct vg_policy p;
	char err[ERRLEN] = "";

	assert_int_equal(vg_parse_args(15, argv, &o, err, sizeof(err)), 0);
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.mode, VG_MODE_TUNNEL);
	assert_string_equal(p.tunnel, "wg0");
	assert_int_equal(p.n_allow, 2);
	assert_int_equal(vg_cidr_prefix(&p.allow[1]), 16);
	assert_words(&p.allow[1].net, 0, 0, 0xffff, 0xac110000);
	assert_int_equal(p.n_dns, 1);
	assert_words(&p.dns[0], 0, 0, 0xffff, 0x0a020001);
}

static void expect_build_error(struct vg_options *o, const char *flag, const char *word)
{
	struct vg_policy p;
	char err[ERRLEN] = "";

	assert_int_equal(vg_policy_build(o, &p, err, sizeof(err)), -EINVAL);
	if (!strstr(err, flag))
		fail_msg("message '%s' does not name %s", err, flag);
	if (!strstr(err, word))
		fail_msg("message '%s' does not name '%s'", err, word);
}

static void test_policy_build_errors(void **state)
{
	(void)state;
	struct vg_options o;

	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	o.allows[o.n_allows++] = "10.0.0.0/8";
	o.allows[o.n_allows++] = "10.0.0.0/33";
	expect_build_error(&o, "--allow", "10.0.0.0/33");

	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	o.allows[o.n_allows++] = "lan";
	expect_build_error(&o, "--allow", "lan");

	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	o.dns[o.n_dns++] = "1.1.1.1";
	o.dns[o.n_dns++] = "1.1.1.1:53";
	expect_build_error(&o, "--dns", "1.1.1.1:53");

	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	o.dns[o.n_dns++] = "10.0.0.0/8";
	expect_build_error(&o, "--dns", "10.0.0.0/8");

	memset(&o, 0, sizeof(o));
	o.gateways[o.n_gateways++] = "10.0.0.1:0";
	expect_build_error(&o, "--gateway", "10.0.0.1:0");

	memset(&o, 0, sizeof(o));
	o.gateways[o.n_gateways++] = "[fd00::1]:1080";
	o.gateways[o.n_gateways++] = "fd00::2]:80";
	expect_build_error(&o, "--gateway", "fd00::2]:80");

	memset(&o, 0, sizeof(o));
	o.gateways[o.n_gateways++] = "10.0.0.1:65536";
	expect_build_error(&o, "--gateway", "10.0.0.1:65536");

	/* IPv6 prefixes that hold ::ffff:0:0/96 would allow every IPv4 address. */
	static const char *const opens_v4[] = { "::/0", "::/64", "::/80", "::/72" };
	for (size_t i = 0; i < sizeof(opens_v4) / sizeof(opens_v4[0]); i++) {
		memset(&o, 0, sizeof(o));
		o.tunnel = "wg0";
		o.allows[o.n_allows++] = opens_v4[i];
		expect_build_error(&o, "--allow", opens_v4[i]);
	}
	struct vg_policy p;
	char err[256];
	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	o.allows[o.n_allows++] = "fd00::/8";
	o.allows[o.n_allows++] = "::ffff:10.0.0.0/104";
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
}

/* ---- name tables ---- */

static void test_reason_names(void **state)
{
	(void)state;
	static const struct {
		unsigned v;
		const char *name;
	} t[] = {
		{ VG_R_NONE, "none" },
		{ VG_R_NO_POLICY, "no_policy" },
		{ VG_R_NETNS, "netns" },
		{ VG_R_DNS, "dns" },
		{ VG_R_CLOSED, "closed" },
		{ VG_R_IPV6, "ipv6" },
		{ VG_R_NO_TUNNEL, "no_tunnel" },
		{ VG_R_OFF_TUNNEL, "off_tunnel" },
		{ VG_R_NOT_GATEWAY, "not_gateway" },
		{ VG_R_SOCKOPT, "sockopt" },
		{ VG_R_RAW, "raw_socket" },
		{ VG_R_TUNNEL_SRC, "tunnel_src" },
		{ VG_R_EVENTS_SUPPRESSED, "events_suppressed" },
		{ VG_R_EVENTS_LOST, "events_lost" },
		{ VG_R_MULTICAST, "multicast" },
		{ VG_R_DISCOVERY, "discovery" },
	};

	/* The table covers every reason. */
	assert_int_equal(sizeof(t) / sizeof(t[0]), VG_R_MAX);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(vg_reason_name(t[i].v), t[i].name);
	assert_string_equal(vg_reason_name(VG_R_MAX), "unknown");
	assert_string_equal(vg_reason_name(VG_R_MAX + 1), "unknown");
	assert_string_equal(vg_reason_name(255), "unknown");
	assert_string_equal(vg_reason_name(UINT_MAX), "unknown");
	assert_string_equal(vg_reason_name((unsigned)-1), "unknown");
}

static void test_hook_names(void **state)
{
	(void)state;
	static const struct {
		unsigned v;
		const char *name;
	} t[] = {
		{ VG_HOOK_CONNECT4, "connect4" },
		{ VG_HOOK_CONNECT6, "connect6" },
		{ VG_HOOK_SENDMSG4, "sendmsg4" },
		{ VG_HOOK_SENDMSG6, "sendmsg6" },
		{ VG_HOOK_SETSOCKOPT, "setsockopt" },
		{ VG_HOOK_SOCK_CREATE, "sock_create" },
		{ VG_HOOK_EGRESS, "egress" },
		{ VG_HOOK_TC, "tc" },
	};

	assert_int_equal(sizeof(t) / sizeof(t[0]), VG_HOOK_MAX - 1);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(vg_hook_name(t[i].v), t[i].name);
	/* 0 is no hook. */
	assert_string_equal(vg_hook_name(0), "unknown");
	assert_string_equal(vg_hook_name(VG_HOOK_MAX), "unknown");
	assert_string_equal(vg_hook_name(200), "unknown");
	assert_string_equal(vg_hook_name(UINT_MAX), "unknown");
}

static void test_proto_names(void **state)
{
	(void)state;
	assert_string_equal(vg_proto_name(IPPROTO_TCP), "tcp");
	assert_string_equal(vg_proto_name(6), "tcp");
	assert_string_equal(vg_proto_name(IPPROTO_UDP), "udp");
	assert_string_equal(vg_proto_name(17), "udp");
	assert_string_equal(vg_proto_name(IPPROTO_ICMP), "icmp");
	assert_string_equal(vg_proto_name(IPPROTO_ICMPV6), "icmpv6");
	assert_string_equal(vg_proto_name(0), "");
	assert_string_equal(vg_proto_name(IPPROTO_RAW), "other");
	assert_string_equal(vg_proto_name(IPPROTO_SCTP), "other");
	assert_string_equal(vg_proto_name(IPPROTO_UDPLITE), "other");
	assert_string_equal(vg_proto_name(256 + IPPROTO_TCP), "other");
	assert_string_equal(vg_proto_name(UINT_MAX), "other");
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(vg_mode_name(VG_MODE_TUNNEL), "tunnel");
	assert_string_equal(vg_mode_name(VG_MODE_GATEWAY), "gateway");
	assert_string_equal(vg_mode_name(0), "unknown");
	assert_string_equal(vg_mode_name(3), "unknown");
	assert_string_equal(vg_mode_name(UINT_MAX), "unknown");
}

/* Steering: the mark's table defaults to the mark's number; only IPv4 subnets become rules. */
static void test_policy_steering(void **state)
{
	(void)state;
	static const struct {
		const char *allow;
		int want_rule;        /* 1: an IPv4 rule of addr/len */
		const char *addr;
		int len;
	} t[] = {
		{ "192.168.1.7/24", 1, "192.168.1.0", 24 },
		{ "10.0.0.1", 1, "10.0.0.1", 32 },
		{ "172.16.0.0/12", 1, "172.16.0.0", 12 },
		{ "fd00::/8", 0, NULL, 0 },
		{ "::ffff:10.1.0.0/112", 1, "10.1.0.0", 16 },
		{ "0.0.0.0/1", 1, "0.0.0.0", 1 },
	};
	struct vg_options o = { .cmd = VG_CMD_ATTACH, .tunnel = "wg0" };
	struct vg_prefix4 pf[VG_MAX_ALLOW];
	struct vg_policy p;
	char err[256];
	int n, k = 0;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		o.allows[o.n_allows++] = t[i].allow;
	o.fwmark = 0x1234;
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.fwmark, 0x1234);
	assert_int_equal(p.route_table, 0x1234);
	o.route_table = 77;
	assert_int_equal(vg_policy_build(&o, &p, err, sizeof(err)), 0);
	assert_int_equal(p.route_table, 77);

	n = vg_policy_allow4(&p, pf, VG_MAX_ALLOW);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct in_addr a;

		if (!t[i].want_rule)
			continue;
		assert_true(k < n);
		assert_int_equal(inet_pton(AF_INET, t[i].addr, &a), 1);
		assert_int_equal(pf[k].addr, a.s_addr);
		assert_int_equal(pf[k].len, t[i].len);
		k++;
	}
	assert_int_equal(n, k);
	/* A short output keeps to its size. */
	assert_int_equal(vg_policy_allow4(&p, pf, 2), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_v4),
		cmocka_unit_test(test_addr_v6),
		cmocka_unit_test(test_addr_mapped),
		cmocka_unit_test(test_addr_bad),
		cmocka_unit_test(test_addr_str_small_buffer),
		cmocka_unit_test(test_cidr_v4),
		cmocka_unit_test(test_cidr_v4_zero),
		cmocka_unit_test(test_cidr_host_bits_masked),
		cmocka_unit_test(test_cidr_v6),
		cmocka_unit_test(test_cidr_mapped),
		cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_numbers_leading_whitespace),
		cmocka_unit_test(test_cidr_mask_words),
		cmocka_unit_test(test_cidr_prefix_round_trip),
		cmocka_unit_test(test_gateway_v4),
		cmocka_unit_test(test_gateway_v6),
		cmocka_unit_test(test_gateway_mapped),
		cmocka_unit_test(test_gateway_padding_zeroed),
		cmocka_unit_test(test_gateway_bad),
		cmocka_unit_test(test_policy_build_tunnel),
		cmocka_unit_test(test_policy_build_gateway),
		cmocka_unit_test(test_policy_build_full),
		cmocka_unit_test(test_policy_build_from_args),
		cmocka_unit_test(test_policy_build_errors),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_policy_steering),
		cmocka_unit_test(test_hook_names),
		cmocka_unit_test(test_proto_names),
		cmocka_unit_test(test_mode_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
