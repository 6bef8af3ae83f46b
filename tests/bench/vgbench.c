// SPDX-License-Identifier: GPL-2.0
/*
 * vgbench - the load generator of `make bench` (tests/bench/run.sh).
 *
 * Each subcommand is one tight loop of the system calls a torrent client
 * makes, timed from inside, so the figures hold the cost of the calls and
 * nothing of the shell around them. It prints ONE result line of key=value
 * pairs on stdout; diagnostics go to stderr as "vgbench: ...".
 *
 *   sendto NET PORT --count N [--dsts K] [--size B]
 *       unconnected UDP sendto() of B-byte datagrams (default 100) round robin
 *       to K destinations (default 4096): addresses NET+1.., ports PORT..PORT+1023
 *       (DHT/uTP-like). "ns_per_call=X calls=N failed=F"
 *   connect udp|tcp NET PORT --count N [--dsts K]
 *       socket()+connect()+close() N times. udp: K destinations as for sendto;
 *       tcp: the one server NET+1:PORT, closed with an RST (SO_LINGER 0) so
 *       that no TIME_WAIT piles up and ports never run out.
 *       "ns_per_conn=X conns=N failed=F"
 *   accept ADDR PORT
 *       the TCP server of `connect tcp`: accept() and close() until SIGTERM.
 *       "accepted=N"
 *   storm NET4 NET6 --seconds S [--dsts K]
 *       the denied-attempt storm: UDP sendto() alternating between DNS
 *       (port 53) to K addresses NET4+1.. and port 6881 on K IPv6 addresses
 *       NET6+1.., as fast as it can. "attempts=N denied=D sent=S failed=F ns_per_call=X"
 *       (denied: EPERM, what a kill switch answers; failed: any other error)
 *
 * ns_per_call and ns_per_conn are the median over 16 equal chunks of the run
 * (wall clock): a chunk in which the machine ran something else does not move
 * the median. Before timing, sendto and connect udp go once to every
 * destination (connect tcp connects once), so that neighbour and route
 * caches are warm in every run.
 *
 * Exit status: 0 done (whatever the kernel answered), 1 setup failed, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS 16
#define PORT_SPREAD 1024
#define MAX_DSTS 65536

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int usage(const char *why)
{
	fprintf(stderr,
		"vgbench: %s\n"
		"usage: vgbench sendto NET PORT --count N [--dsts K] [--size B]\n"
		"       vgbench connect udp|tcp NET PORT --count N [--dsts K]\n"
		"       vgbench accept ADDR PORT\n"
		"       vgbench storm NET4 NET6 --seconds S [--dsts K]\n",
		why);
	return 2;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct opts {
	long count;
	long dsts;
	long size;
	long seconds;
	int npos;
	const char *pos[4];
};

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* K IPv4 destinations NET+1.., ports PORT..PORT+spread-1 in turn. */
static struct sockaddr_in *v4_dsts(const char *net, int port, long k, int spread)
{
	struct sockaddr_in *d = calloc((size_t)k, sizeof(*d));
	struct in_addr base;

	if (!d)
		return NULL;
	if (inet_pton(AF_INET, net, &base) != 1) {
		free(d);
		errno = EINVAL;
		return NULL;
	}
	for (long i = 0; i < k; i++) {
		d[i].sin_family = AF_INET;
		d[i].sin_addr.s_addr = htonl(ntohl(base.s_addr) + 1 + (uint32_t)i);
		d[i].sin_port = htons((uint16_t)(port + i % spread));
	}
	return d;
}

/* K IPv6 destinations NET6+1.. on one port. */
static struct sockaddr_in6 *v6_dsts(const char *net, int port, long k)
{
	struct sockaddr_in6 *d = calloc((size_t)k, sizeof(*d));
	struct in6_addr base;

	if (!d)
		return NULL;
	if (inet_pton(AF_INET6, net, &base) != 1) {
		free(d);
		errno = EINVAL;
		return NULL;
	}
	for (long i = 0; i < k; i++) {
		uint32_t low;

		d[i].sin6_family = AF_INET6;
		d[i].sin6_addr = base;
		memcpy(&low, &base.s6_addr[12], 4);
		low = htonl(ntohl(low) + 1 + (uint32_t)i);
		memcpy(&d[i].sin6_addr.s6_addr[12], &low, 4);
		d[i].sin6_port = htons((uint16_t)port);
	}
	return d;
}

static int udp_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fprintf(stderr, "vgbench: UDP socket (family %d): %s\n", family, strerror(errno));
	return fd;
}

/*
 * Runs `one(i, ctx)` count times in CHUNKS timed chunks; returns the median
 * nanoseconds per call and adds the failures (one() != 0) to *failed.
 */
static double timed_loop(long count, int (*one)(long i, void *ctx), void *ctx, long *failed)
{
	double per[CHUNKS];
	long per_chunk = count / CHUNKS, i = 0;

	if (per_chunk < 1)
		per_chunk = 1;
	for (int c = 0; c < CHUNKS; c++) {
		long long t0 = now_ns();

		for (long n = 0; n < per_chunk; n++, i++)
			*failed += one(i, ctx) != 0;
		per[c] = (double)(now_ns() - t0) / (double)per_chunk;
	}
	return median(per, CHUNKS);
}

struct sendto_ctx {
	int fd;
	const struct sockaddr_in *dst;
	long k;
	const char *payload;
	size_t size;
};

static int sendto_one(long i, void *arg)
{
	struct sendto_ctx *c = arg;
	const struct sockaddr_in *d = &c->dst[i % c->k];

	return sendto(c->fd, c->payload, c->size, 0, (const struct sockaddr *)d, sizeof(*d)) < 0;
}

static int cmd_sendto(const struct opts *o)
{
	static char payload[65536];
	struct sendto_ctx c = { .k = o->dsts, .payload = payload, .size = (size_t)o->size };
	long port, failed = 0, warm = 0;
	double ns;

	if (o->npos != 2 || parse_long(o->pos[1], 1, 65535 - PORT_SPREAD, &port))
		return usage("sendto NET PORT --count N");
	c.dst = v4_dsts(o->pos[0], (int)port, o->dsts, PORT_SPREAD);
	if (!c.dst)
		return usage("sendto: NET must be an IPv4 address");
	c.fd = udp_socket(AF_INET);
	if (c.fd < 0)
		return 1;
	memset(payload, 'v', sizeof(payload));
	for (long i = 0; i < c.k; i++)
		warm += sendto_one(i, &c);
	if (warm == c.k) {
		fprintf(stderr, "vgbench: sendto %s: every warm-up send failed: %s\n", o->pos[0],
			strerror(errno));
		return 1;
	}
	ns = timed_loop(o->count, sendto_one, &c, &failed);
	printf("ns_per_call=%.1f calls=%ld failed=%ld\n", ns, o->count / CHUNKS * CHUNKS, failed);
	return 0;
}

struct connect_ctx {
	int type;
	const struct sockaddr_in *dst;
	long k; /* destinations in dst */
};

static int connect_one(long i, void *arg)
{
	const struct connect_ctx *c = arg;
	int fd = socket(AF_INET, c->type | SOCK_CLOEXEC, 0), bad;

	if (fd < 0)
		return 1;
	if (c->type == SOCK_STREAM) {
		/* Close with an RST: no TIME_WAIT, so tens of thousands of
		 * connections never exhaust the ephemeral ports. */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	bad = connect(fd, (const struct sockaddr *)&c->dst[i % c->k], sizeof(c->dst[0])) != 0;
	close(fd);
	return bad;
}

static int cmd_connect(const struct opts *o)
{
	struct connect_ctx c = { .type = SOCK_DGRAM, .k = o->dsts };
	long port, failed = 0, warm = 0;
	double ns;

	if (o->npos != 3 || parse_long(o->pos[2], 1, 65535 - PORT_SPREAD, &port))
		return usage("connect udp|tcp NET PORT --count N");
	if (!strcmp(o->pos[0], "tcp")) {
		/* One server, NET+1:PORT. */
		c.type = SOCK_STREAM;
		c.k = 1;
	} else if (strcmp(o->pos[0], "udp")) {
		return usage("connect: udp or tcp");
	}
	c.dst = v4_dsts(o->pos[1], (int)port, c.k, PORT_SPREAD);
	if (!c.dst)
		return usage("connect: NET must be an IPv4 address");
	for (long i = 0; i < c.k; i++)
		warm += connect_one(i, &c);
	if (warm == c.k) {
		fprintf(stderr, "vgbench: connect %s %s: every warm-up connect failed: %s\n",
			o->pos[0], o->pos[1], strerror(errno));
		return 1;
	}
	ns = timed_loop(o->count, connect_one, &c, &failed);
	printf("ns_per_conn=%.1f conns=%ld failed=%ld\n", ns, o->count / CHUNKS * CHUNKS, failed);
	return 0;
}

static int cmd_accept(const struct opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	long port, accepted = 0;
	int fd, one = 1;

	if (o->npos != 2 || parse_long(o->pos[1], 1, 65535, &port) ||
	    inet_pton(AF_INET, o->pos[0], &sa.sin_addr) != 1)
		return usage("accept ADDR PORT");
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096)) {
		fprintf(stderr, "vgbench: listen on %s:%ld: %s\n", o->pos[0], port, strerror(errno));
		return 1;
	}
	while (!stop_flag) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0) {
			accepted++;
			close(c);
		} else if (errno != EINTR && errno != ECONNABORTED) {
			fprintf(stderr, "vgbench: accept on %s:%ld: %s\n", o->pos[0], port,
				strerror(errno));
			return 1;
		}
	}
	printf("accepted=%ld\n", accepted);
	return 0;
}

static int cmd_storm(const struct opts *o)
{
	static char payload[100];
	struct sockaddr_in *d4 = NULL;
	struct sockaddr_in6 *d6 = NULL;
	long attempts = 0, denied = 0, sent = 0, failed = 0;
	long long t0, deadline;
	int fd4, fd6;

	if (o->npos != 2 || o->seconds <= 0)
		return usage("storm NET4 NET6 --seconds S");
	d4 = v4_dsts(o->pos[0], 53, o->dsts, 1);
	d6 = v6_dsts(o->pos[1], 6881, o->dsts);
	if (!d4 || !d6)
		return usage("storm: NET4 must be an IPv4 address, NET6 an IPv6 one");
	fd4 = udp_socket(AF_INET);
	fd6 = udp_socket(AF_INET6);
	if (fd4 < 0 || fd6 < 0)
		return 1;
	memset(payload, 'v', sizeof(payload));
	t0 = now_ns();
	deadline = t0 + o->seconds * 1000000000LL;
	/* The clock is read once per 256 attempts: it is not what is measured. */
	while (!stop_flag && (attempts % 256 || now_ns() < deadline)) {
		long i = attempts / 2 % o->dsts;
		ssize_t n = attempts % 2
			? sendto(fd6, payload, sizeof(payload), 0, (struct sockaddr *)&d6[i], sizeof(d6[i]))
			: sendto(fd4, payload, sizeof(payload), 0, (struct sockaddr *)&d4[i], sizeof(d4[i]));

		attempts++;
		if (n >= 0)
			sent++;
		else if (errno == EPERM)
			denied++;
		else
			failed++;
	}
	printf("attempts=%ld denied=%ld sent=%ld failed=%ld ns_per_call=%.1f\n", attempts, denied,
	       sent, failed, attempts ? (double)(now_ns() - t0) / (double)attempts : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .count = 100000, .dsts = 4096, .size = 100 };
	struct sigaction sa = { .sa_handler = on_stop };

	if (argc < 2)
		return usage("no subcommand");
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *dst = !strcmp(a, "--count") ? &o.count : !strcmp(a, "--dsts") ? &o.dsts :
			    !strcmp(a, "--size") ? &o.size : !strcmp(a, "--seconds") ? &o.seconds : NULL;

		if (dst) {
			if (!v || parse_long(v, 1, dst == &o.dsts ? MAX_DSTS : 1000000000L, dst))
				return usage("option needs a number in range");
			i++;
		} else if (!strncmp(a, "--", 2)) {
			return usage("unknown option");
		} else if (o.npos < 4) {
			o.pos[o.npos++] = a;
		} else {
			return usage("too many arguments");
		}
	}
	if (o.size > 65000)
		return usage("--size at most 65000");
	/* No SA_RESTART: SIGTERM must interrupt accept() so the server reports. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (!strcmp(argv[1], "sendto"))
		return cmd_sendto(&o);
	if (!strcmp(argv[1], "connect"))
		return cmd_connect(&o);
	if (!strcmp(argv[1], "accept"))
		return cmd_accept(&o);
	if (!strcmp(argv[1], "storm"))
		return cmd_storm(&o);
	return usage("unknown subcommand");
}
