// SPDX-License-Identifier: GPL-2.0
/*
 * vgprobe - the guarded "torrent client" of the vpnguard-bpf tests.
 *
 * It opens sockets the way real applications do (and the way leaks happen:
 * device binding, marks, IP_UNICAST_IF, IP_PKTINFO, raw sockets) and prints
 * exactly ONE result line on stdout, so shell tests can compare it.
 * Diagnostics (local address, stage that failed) go to stderr as "vgprobe: ...".
 *
 * Exit status: 0 the operation succeeded, 1 it failed (the kernel said no:
 * the line is "errno NAME"), 2 usage error.
 *
 * Subcommands and their result lines:
 *   connect tcp|udp ADDR PORT   "connected" | "refused" (ECONNREFUSED: the SYN
 *                               reached a host that answered RST; exit 0) |
 *                               "errno NAME".  udp = connect() + one send().
 *   sendto ADDR PORT            "sent K/N" (exit 0 when K == N) |
 *                               "sent K/N errno NAME" (first errno; exit 1)
 *   flood udp|tcp ADDR PORT --seconds S
 *                               "ok=K failed=F blocked=B reopened=R first_errno=X last_errno=Y"
 *                               (exit 0 when F == 0)
 *   setsockopt bindtodevice|bindtoifindex|mark|unicast_if VALUE
 *                               "ok" | "errno NAME"
 *   raw [ADDR]                  "ok" (socket made; with ADDR: one ICMP echo sent) | "errno NAME"
 *   ping ADDR                   ICMP echo on a ping socket (SOCK_DGRAM, IPPROTO_ICMP), the
 *                               unprivileged ping: "reply" | "no reply" (exit 1) | "errno NAME"
 *   sendmsg-pktinfo ADDR PORT IFNAME
 *                               "sent" | "errno NAME"
 *   listen tcp|udp PORT         runs until SIGTERM/SIGINT, then prints
 *                               "received datagrams=N bytes=B peer=ADDR" (udp) or
 *                               "received connections=N bytes=B peer=ADDR" (tcp)
 *
 * Build: gcc -Wall -Wextra -Werror -O2 -o vgprobe vgprobe.c   (or make -C tests/tools)
 * Needs nothing but libc.  Run `vgprobe --help` for the options.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif
#ifndef IP_UNICAST_IF
#define IP_UNICAST_IF 50
#endif
#ifndef IPV6_UNICAST_IF
#define IPV6_UNICAST_IF 76
#endif

#define EXIT_OK 0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2

static const char *usage_text =
	"usage: vgprobe SUBCOMMAND ARGS... [OPTIONS]\n"
	"  connect tcp|udp ADDR PORT      connect (udp: and send one datagram)\n"
	"  sendto ADDR PORT               unconnected UDP sends (--count, --interval-us, --size)\n"
	"  flood udp|tcp ADDR PORT --seconds S\n"
	"                                 keep sending for S seconds; a failed socket is\n"
	"                                 reopened/reconnected (unless --no-reopen)\n"
	"  setsockopt bindtodevice|bindtoifindex|mark|unicast_if VALUE\n"
	"                                 one setsockopt on a fresh UDP socket\n"
	"  raw [ADDR]                     socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)\n"
	"  ping ADDR                      one ICMP echo on a ping socket (--timeout-ms for the reply)\n"
	"                                 (with ADDR: send one ICMP echo request)\n"
	"  sendmsg-pktinfo ADDR PORT IFNAME\n"
	"                                 UDP sendmsg with an IP_PKTINFO/IPV6_PKTINFO cmsg\n"
	"  listen tcp|udp PORT            count what arrives until SIGTERM/SIGINT\n"
	"options:\n"
	"  --bind-dev IFNAME    SO_BINDTODEVICE before connecting/sending\n"
	"  --mark N             SO_MARK before connecting/sending\n"
	"  --unicast-if IFNAME  IP_UNICAST_IF / IPV6_UNICAST_IF before connecting/sending\n"
	"  --src ADDR           bind() to this local address (port 0) first\n"
	"  --v6                 use an AF_INET6 socket (IPv4 ADDR becomes ::ffff:a.b.c.d)\n"
	"  --timeout-ms N       TCP connect timeout (default 2000)\n"
	"  --count N            sendto: datagrams to send (default 1)\n"
	"  --interval-us N      pause between sends (sendto default 0, flood default 1000)\n"
	"  --size N             payload bytes (default 32; flood tcp default 1024)\n"
	"  --seconds S          flood duration (required for flood)\n"
	"  --unconnected        flood udp: sendto() on an unconnected socket\n"
	"  --no-reopen          flood: keep the same socket after a failure\n"
	"  --tcp                setsockopt: use a TCP socket instead of UDP\n"
	"  --ready-file PATH    listen: create PATH once the socket is listening\n"
	"exit: 0 success, 1 failure (\"errno NAME\"), 2 usage\n";

struct opts {
	const char *bind_dev;
	const char *unicast_if;
	const char *src;
	const char *ready_file;
	unsigned long mark;
	int has_mark;
	int v6;
	int tcp;
	int unconnected;
	int no_reopen;
	long timeout_ms;
	long count;
	long interval_us;   /* -1: subcommand default */
	long size;          /* -1: subcommand default */
	long seconds;
	int npos;
	const char *pos[8];
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static const char *errno_name(int e)
{
	static char buf[16];

	switch (e) {
#define E(x) case x: return #x
	E(EPERM); E(ENOENT); E(ESRCH); E(EINTR); E(EIO); E(ENXIO); E(EBADF);
	E(EAGAIN); E(ENOMEM); E(EACCES); E(EFAULT); E(EBUSY); E(EEXIST);
	E(ENODEV); E(EINVAL); E(ENFILE); E(EMFILE); E(ENOSPC); E(EPIPE);
	E(ENOSYS); E(ENOTSOCK); E(EDESTADDRREQ); E(EMSGSIZE); E(EPROTOTYPE);
	E(ENOPROTOOPT); E(EPROTONOSUPPORT); E(ESOCKTNOSUPPORT); E(EOPNOTSUPP);
	E(EPFNOSUPPORT); E(EAFNOSUPPORT); E(EADDRINUSE); E(EADDRNOTAVAIL);
	E(ENETDOWN); E(ENETUNREACH); E(ENETRESET); E(ECONNABORTED);
	E(ECONNRESET); E(ENOBUFS); E(EISCONN); E(ENOTCONN); E(ETIMEDOUT);
	E(ECONNREFUSED); E(EHOSTDOWN); E(EHOSTUNREACH); E(EALREADY);
	E(EINPROGRESS); E(ENOKEY); E(EKEYREJECTED);
#undef E
	}
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("vgprobe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage(const char *why)
{
	if (why)
		diag("%s", why);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* The one result line. */
static void result(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int fail(int e, const char *stage)
{
	diag("%s: %s", stage, strerror(e));
	result("errno %s", errno_name(e));
	return EXIT_REFUSED;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	if (us > 0)
		nanosleep(&ts, NULL);
}

/* Interface name or plain number -> ifindex; 0 if unknown. */
static unsigned int ifindex_of(const char *s)
{
	long v;

	if (parse_long(s, 0, 0x7fffffff, &v) == 0)
		return (unsigned int)v;
	return if_nametoindex(s);
}

/*
 * ADDR (IPv4, IPv6 with optional %scope, or ::ffff:a.b.c.d) -> sockaddr.
 * With force_v6 an IPv4 literal becomes IPv4-mapped on an AF_INET6 socket.
 * *mapped tells whether the destination is IPv4-mapped (the kernel then takes
 * the IPv4 path, so IPv4 socket options matter too).
 */
static int parse_addr(const char *str, int port, int force_v6,
		      struct sockaddr_storage *ss, socklen_t *len, int *mapped)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN + IFNAMSIZ + 2];
	char *pct;

	memset(ss, 0, sizeof(*ss));
	*mapped = 0;
	if (inet_pton(AF_INET, str, &sin->sin_addr) == 1) {
		if (!force_v6) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			*len = sizeof(*sin);
			return 0;
		}
		struct in_addr a = sin->sin_addr;

		memset(ss, 0, sizeof(*ss));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], &a, 4);
		*len = sizeof(*sin6);
		*mapped = 1;
		return 0;
	}
	if (strlen(str) >= sizeof(buf))
		return -1;
	strcpy(buf, str);
	pct = strchr(buf, '%');
	if (pct)
		*pct++ = '\0';
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	if (pct) {
		sin6->sin6_scope_id = ifindex_of(pct);
		if (!sin6->sin6_scope_id)
			return -1;
	}
	*len = sizeof(*sin6);
	*mapped = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
	return 0;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		port = ntohs(s->sin_port);
		snprintf(buf, n, "%s:%d", a, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		port = ntohs(s->sin6_port);
		snprintf(buf, n, "[%s]:%d", a, port);
	} else {
		snprintf(buf, n, "none");
	}
	return buf;
}

/* Only the address part, for the "peer=" field of listen. */
static const char *host_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, n);
	else
		snprintf(buf, n, "none");
	return buf;
}

static void show_local(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char buf[INET6_ADDRSTRLEN + 16];
	char dev[IFNAMSIZ + 1] = "";
	socklen_t dl = sizeof(dev);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) != 0)
			dev[0] = '\0';
		diag("local %s bound-dev %s", addr_str(&ss, buf, sizeof(buf)),
		     dev[0] ? dev : "-");
	}
}

/*
 * The steering options a guard must refuse or override.  Returns 0 or an errno;
 * *stage names the step that failed.
 */
static int apply_opts(int fd, int family, int mapped, const struct opts *o,
		      const char **stage)
{
	if (o->bind_dev) {
		*stage = "SO_BINDTODEVICE";
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->bind_dev,
			       (socklen_t)strlen(o->bind_dev)) != 0)
			return errno;
	}
	if (o->has_mark) {
		unsigned int m = (unsigned int)o->mark;

		*stage = "SO_MARK";
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) != 0)
			return errno;
	}
	if (o->unicast_if) {
		unsigned int idx = ifindex_of(o->unicast_if);

		*stage = "unicast-if lookup";
		if (!idx)
			return ENODEV;
		if (family == AF_INET6) {
			/* Linux reads IPV6_UNICAST_IF in network byte order too. */
			uint32_t v = htonl(idx);

			*stage = "IPV6_UNICAST_IF";
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_IF, &v, sizeof(v)) != 0)
				return errno;
		}
		if (family == AF_INET || mapped) {
			/* IPv4 wants the index in network byte order. */
			uint32_t v = htonl(idx);

			*stage = "IP_UNICAST_IF";
			if (setsockopt(fd, IPPROTO_IP, IP_UNICAST_IF, &v, sizeof(v)) != 0)
				return errno;
		}
	}
	if (o->src) {
		struct sockaddr_storage ss;
		socklen_t l;
		int m;

		*stage = "bind --src";
		if (parse_addr(o->src, 0, family == AF_INET6, &ss, &l, &m) != 0)
			return EINVAL;
		if (bind(fd, (struct sockaddr *)&ss, l) != 0)
			return errno;
	}
	return 0;
}

/* Fresh socket with the options applied; -1 and *err set on failure. */
static int open_sock(int family, int type, int mapped, const struct opts *o,
		     int *err, const char **stage)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		*err = errno;
		*stage = "socket";
		return -1;
	}
	*err = apply_opts(fd, family, mapped, o, stage);
	if (*err) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Non-blocking connect bounded by timeout_ms; returns 0 or an errno
 * (ETIMEDOUT when no answer came).
 */
static int connect_timeout(int fd, const struct sockaddr_storage *ss, socklen_t len,
			   long timeout_ms)
{
	int fl = fcntl(fd, F_GETFL);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int e = 0;
	socklen_t el = sizeof(e);
	int r;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
		if (errno != EINPROGRESS)
			return errno;
		do {
			r = poll(&p, 1, (int)timeout_ms);
		} while (r < 0 && errno == EINTR && !stop_flag);
		if (r == 0)
			return ETIMEDOUT;
		if (r < 0)
			return errno;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
			return errno;
		if (e)
			return e;
	}
	fcntl(fd, F_SETFL, fl);
	return 0;
}

static int proto_arg(const char *s, int *type)
{
	if (!strcmp(s, "tcp"))
		*type = SOCK_STREAM;
	else if (!strcmp(s, "udp"))
		*type = SOCK_DGRAM;
	else
		return -1;
	return 0;
}

static int port_arg(const char *s, int *port)
{
	long v;

	if (parse_long(s, 0, 65535, &v) != 0)
		return -1;
	*port = (int)v;
	return 0;
}

static int cmd_connect(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int type, port, mapped, fd, e;
	const char *stage = "";
	char payload[65536];

	if (o->npos != 3 || proto_arg(o->pos[0], &type) || port_arg(o->pos[2], &port))
		return usage("connect tcp|udp ADDR PORT");
	if (parse_addr(o->pos[1], port, o->v6, &ss, &len, &mapped))
		return usage("bad ADDR");
	fd = open_sock(ss.ss_family, type, mapped, o, &e, &stage);
	if (fd < 0)
		return fail(e, stage);
	if (type == SOCK_STREAM) {
		e = connect_timeout(fd, &ss, len, o->timeout_ms);
		if (e == ECONNREFUSED) {
			diag("connect: ECONNREFUSED (the destination answered)");
			result("refused");
			return EXIT_OK;
		}
		if (e)
			return fail(e, "connect");
		show_local(fd);
		result("connected");
		return EXIT_OK;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) != 0)
		return fail(errno, "connect");
	show_local(fd);
	memset(payload, 'v', sizeof(payload));
	if (send(fd, payload, (size_t)(o->size < 0 ? 32 : o->size), 0) < 0)
		return fail(errno, "send");
	result("connected");
	return EXIT_OK;
}

static int cmd_sendto(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int port, mapped, fd, e, first = 0;
	const char *stage = "";
	long i, ok = 0;
	static char payload[65536];

	if (o->npos != 2 || port_arg(o->pos[1], &port))
		return usage("sendto ADDR PORT");
	if (parse_addr(o->pos[0], port, o->v6, &ss, &len, &mapped))
		return usage("bad ADDR");
	fd = open_sock(ss.ss_family, SOCK_DGRAM, mapped, o, &e, &stage);
	if (fd < 0)
		return fail(e, stage);
	memset(payload, 'v', sizeof(payload));
	for (i = 0; i < o->count && !stop_flag; i++) {
		if (i && o->interval_us > 0)
			sleep_us(o->interval_us);
		if (sendto(fd, payload, (size_t)(o->size < 0 ? 32 : o->size), 0,
			   (struct sockaddr *)&ss, len) >= 0)
			ok++;
		else if (!first)
			first = errno;
	}
	show_local(fd);
	if (ok == o->count) {
		result("sent %ld/%ld", ok, o->count);
		return EXIT_OK;
	}
	diag("sendto: %s", strerror(first));
	result("sent %ld/%ld errno %s", ok, o->count, first ? errno_name(first) : "none");
	return EXIT_REFUSED;
}

static int cmd_flood(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int type, port, mapped, fd = -1, e, first = 0, last = 0;
	const char *stage = "";
	long long deadline;
	long ok = 0, failed = 0, blocked = 0, reopened = 0, opened = 0;
	struct timespec first_at = { 0 };
	long interval = o->interval_us < 0 ? 1000 : o->interval_us;
	size_t size;
	static char payload[65536];

	if (o->npos != 3 || proto_arg(o->pos[0], &type) || port_arg(o->pos[2], &port))
		return usage("flood udp|tcp ADDR PORT --seconds S");
	if (o->seconds <= 0)
		return usage("flood needs --seconds S");
	if (parse_addr(o->pos[1], port, o->v6, &ss, &len, &mapped))
		return usage("bad ADDR");
	size = (size_t)(o->size >= 0 ? o->size : type == SOCK_STREAM ? 1024 : 32);
	memset(payload, 'v', sizeof(payload));
	deadline = now_ms() + o->seconds * 1000;

	/* When the kernel first said no, on the clock of vg_state's lease, for reaction times. */
#define FLOOD_FAIL(err) do { \
		failed++; last = (err); \
		if (!first) { \
			first = (err); \
			clock_gettime(CLOCK_BOOTTIME, &first_at); \
		} \
	} while (0)

	while (!stop_flag && now_ms() < deadline) {
		ssize_t n;

		if (fd < 0) {
			if (opened)
				reopened++;
			opened++;
			fd = open_sock(ss.ss_family, type, mapped, o, &e, &stage);
			if (fd < 0) {
				FLOOD_FAIL(e);
				sleep_us(interval ? interval : 1000);
				continue;
			}
			if (type == SOCK_STREAM) {
				long long left = deadline - now_ms();
				struct timeval tv = { 0, 200000 };

				e = connect_timeout(fd, &ss, len,
						    left < o->timeout_ms ? (left > 0 ? left : 1)
									 : o->timeout_ms);
				/* A dead path must not stall the loop in send(). */
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			} else if (!o->unconnected) {
				e = connect(fd, (struct sockaddr *)&ss, len) ? errno : 0;
			} else {
				e = 0;
			}
			if (e) {
				FLOOD_FAIL(e);
				close(fd);
				fd = -1;
				sleep_us(interval ? interval : 1000);
				continue;
			}
		}
		if (type == SOCK_DGRAM && o->unconnected)
			n = sendto(fd, payload, size, 0, (struct sockaddr *)&ss, len);
		else
			n = send(fd, payload, size, MSG_NOSIGNAL);
		if (n >= 0) {
			ok++;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			/* Send buffer full (TCP path stalled): not a refusal. */
			blocked++;
		} else if (type == SOCK_DGRAM && errno == ECONNREFUSED) {
			/* ICMP port unreachable from the far end: it was delivered. */
			ok++;
		} else {
			FLOOD_FAIL(errno);
			if (!o->no_reopen || type == SOCK_STREAM) {
				close(fd);
				fd = -1;
			}
		}
		sleep_us(interval);
	}
#undef FLOOD_FAIL
	if (fd >= 0)
		close(fd);
	if (first)
		fprintf(stderr, "vgprobe: first failure at boottime %lld ns\n",
			(long long)first_at.tv_sec * 1000000000LL + first_at.tv_nsec);
	result("ok=%ld failed=%ld blocked=%ld reopened=%ld first_errno=%s last_errno=%s",
	       ok, failed, blocked, reopened, first ? errno_name(first) : "none",
	       last ? errno_name(last) : "none");
	return failed ? EXIT_REFUSED : EXIT_OK;
}

static int cmd_setsockopt(const struct opts *o)
{
	int family = o->v6 ? AF_INET6 : AF_INET;
	int fd;
	long v;
	const char *kind, *val;

	if (o->npos != 2)
		return usage("setsockopt bindtodevice|bindtoifindex|mark|unicast_if VALUE");
	kind = o->pos[0];
	val = o->pos[1];
	fd = socket(family, (o->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, "socket");
	if (!strcmp(kind, "bindtodevice")) {
		/* An empty VALUE unbinds, as SO_BINDTODEVICE with "" does. */
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, val, (socklen_t)strlen(val)))
			return fail(errno, "SO_BINDTODEVICE");
	} else if (!strcmp(kind, "bindtoifindex")) {
		int idx;

		if (parse_long(val, 0, 0x7fffffff, &v) == 0)
			idx = (int)v;
		else if (!(idx = (int)if_nametoindex(val)))
			return usage("bindtoifindex: unknown interface");
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &idx, sizeof(idx)))
			return fail(errno, "SO_BINDTOIFINDEX");
	} else if (!strcmp(kind, "mark")) {
		unsigned int m;

		if (parse_long(val, 0, 0xffffffffL, &v))
			return usage("mark: VALUE must be a number");
		m = (unsigned int)v;
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)))
			return fail(errno, "SO_MARK");
	} else if (!strcmp(kind, "unicast_if")) {
		unsigned int idx;

		if (parse_long(val, 0, 0x7fffffff, &v) == 0)
			idx = (unsigned int)v;
		else if (!(idx = if_nametoindex(val)))
			return usage("unicast_if: unknown interface");
		if (family == AF_INET6) {
			/* Linux reads IPV6_UNICAST_IF in network byte order too. */
			uint32_t i6 = htonl(idx);

			if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_IF, &i6, sizeof(i6)))
				return fail(errno, "IPV6_UNICAST_IF");
		} else {
			uint32_t n = htonl(idx);

			if (setsockopt(fd, IPPROTO_IP, IP_UNICAST_IF, &n, sizeof(n)))
				return fail(errno, "IP_UNICAST_IF");
		}
	} else {
		return usage("setsockopt: unknown option kind");
	}
	result("ok");
	return EXIT_OK;
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	if (len)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int cmd_raw(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int mapped = 0, fd, e;
	int family = o->v6 ? AF_INET6 : AF_INET;
	const char *stage = "";
	unsigned char pkt[64];

	if (o->npos > 1)
		return usage("raw [ADDR]");
	if (o->npos == 1) {
		if (parse_addr(o->pos[0], 0, 0, &ss, &len, &mapped) || mapped)
			return usage("bad ADDR");
		family = ss.ss_family;
	}
	fd = socket(family, SOCK_RAW | SOCK_CLOEXEC,
		    family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0)
		return fail(errno, "socket(SOCK_RAW)");
	e = apply_opts(fd, family, 0, o, &stage);
	if (e)
		return fail(e, stage);
	if (o->npos == 1) {
		/* ICMP echo request; for ICMPv6 the kernel fills the checksum. */
		memset(pkt, 0, sizeof(pkt));
		pkt[0] = family == AF_INET6 ? 128 : ICMP_ECHO;
		pkt[4] = 0x76; /* id "vg" */
		pkt[5] = 0x67;
		pkt[7] = 1;    /* sequence 1 */
		memset(pkt + 8, 'v', sizeof(pkt) - 8);
		if (family == AF_INET) {
			uint16_t c = csum16(pkt, sizeof(pkt));

			memcpy(pkt + 2, &c, 2);
		}
		if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, len) < 0)
			return fail(errno, "sendto(raw)");
	}
	result("ok");
	return EXIT_OK;
}

/* The unprivileged ping (net.ipv4.ping_group_range): the kernel fills id and checksum. */
static int cmd_ping(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int mapped = 0, fd, e, family;
	const char *stage = "";
	unsigned char pkt[64], reply[256];
	struct pollfd pfd;

	if (o->npos != 1 || parse_addr(o->pos[0], 0, 0, &ss, &len, &mapped))
		return usage("ping ADDR");
	family = ss.ss_family;
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0)
		return fail(errno, "socket(SOCK_DGRAM, IPPROTO_ICMP)");
	e = apply_opts(fd, family, 0, o, &stage);
	if (e)
		return fail(e, stage);
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = family == AF_INET6 ? 128 : ICMP_ECHO;
	pkt[7] = 1; /* sequence 1 */
	memset(pkt + 8, 'v', sizeof(pkt) - 8);
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, len) < 0)
		return fail(errno, "sendto(ping)");
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)o->timeout_ms) == 1 && recv(fd, reply, sizeof(reply), 0) > 0) {
		result("reply");
		return EXIT_OK;
	}
	result("no reply");
	return EXIT_REFUSED;
}

static int cmd_pktinfo(const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int port, mapped, fd, e;
	unsigned int idx;
	const char *stage = "";
	char payload[32];
	struct iovec iov = { payload, sizeof(payload) };
	union {
		char b4[CMSG_SPACE(sizeof(struct in_pktinfo))];
		char b6[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cbuf;
	struct msghdr msg;
	struct cmsghdr *c;

	if (o->npos != 3 || port_arg(o->pos[1], &port))
		return usage("sendmsg-pktinfo ADDR PORT IFNAME");
	if (parse_addr(o->pos[0], port, o->v6, &ss, &len, &mapped))
		return usage("bad ADDR");
	idx = ifindex_of(o->pos[2]);
	if (!idx && strcmp(o->pos[2], "0"))
		return usage("unknown IFNAME");
	fd = open_sock(ss.ss_family, SOCK_DGRAM, mapped, o, &e, &stage);
	if (fd < 0)
		return fail(e, stage);
	memset(payload, 'v', sizeof(payload));
	memset(&cbuf, 0, sizeof(cbuf));
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &ss;
	msg.msg_namelen = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = &cbuf;
	c = (struct cmsghdr *)&cbuf;
	if (ss.ss_family == AF_INET6 && !mapped) {
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi6_ifindex = idx;
		msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	} else {
		/* IPv4 and IPv4-mapped: the kernel takes the IPv4 path. */
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi_ifindex = (int)idx;
		msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	}
	if (sendmsg(fd, &msg, 0) < 0)
		return fail(errno, "sendmsg");
	show_local(fd);
	result("sent");
	return EXIT_OK;
}

#define MAX_CONN 256

static int cmd_listen(const struct opts *o)
{
	int type, port, fd, one = 1, zero = 0, i, nc = 0;
	int family = o->v6 ? AF_INET6 : AF_INET;
	struct sockaddr_storage ss, peer;
	socklen_t len;
	int conns[MAX_CONN];
	struct pollfd pfd[MAX_CONN + 1];
	long long bytes = 0, datagrams = 0, connections = 0;
	static char buf[65536];
	char pbuf[INET6_ADDRSTRLEN] = "none";

	if (o->npos != 2 || proto_arg(o->pos[0], &type) || port_arg(o->pos[1], &port))
		return usage("listen tcp|udp PORT");
	memset(&ss, 0, sizeof(ss));
	memset(&peer, 0, sizeof(peer));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		s->sin6_addr = in6addr_any;
		len = sizeof(*s);
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		s->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*s);
	}
	fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail(errno, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) /* dual stack: also IPv4 clients */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		return fail(errno, "bind");
	if (type == SOCK_STREAM && listen(fd, 64) != 0)
		return fail(errno, "listen");
	diag("listening %s port %d", type == SOCK_STREAM ? "tcp" : "udp", port);
	if (o->ready_file) {
		int rf = open(o->ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (rf >= 0)
			close(rf);
	}
	while (!stop_flag) {
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		for (i = 0; i < nc; i++) {
			pfd[i + 1].fd = conns[i];
			pfd[i + 1].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)nc + 1, 1000) < 0) {
			if (errno == EINTR)
				continue;
			return fail(errno, "poll");
		}
		if (pfd[0].revents & POLLIN) {
			socklen_t pl = sizeof(peer);

			if (type == SOCK_DGRAM) {
				ssize_t n;

				while ((n = recvfrom(fd, buf, sizeof(buf), 0,
						     (struct sockaddr *)&peer, &pl)) >= 0) {
					datagrams++;
					bytes += n;
					pl = sizeof(peer);
				}
			} else {
				int c = accept4(fd, (struct sockaddr *)&peer, &pl,
						SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (c >= 0) {
					connections++;
					if (nc < MAX_CONN)
						conns[nc++] = c;
					else
						close(c);
				}
			}
		}
		/* Read every client; drop the ones that closed. */
		for (i = nc - 1; i >= 0; i--) {
			ssize_t n;

			if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			while ((n = read(conns[i], buf, sizeof(buf))) > 0)
				bytes += n;
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(conns[i]);
				conns[i] = conns[--nc];
			}
		}
	}
	host_str(&peer, pbuf, sizeof(pbuf));
	if (type == SOCK_DGRAM)
		result("received datagrams=%lld bytes=%lld peer=%s", datagrams, bytes, pbuf);
	else
		result("received connections=%lld bytes=%lld peer=%s", connections, bytes, pbuf);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	const char *cmd;
	int i;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = 2000;
	o.count = 1;
	o.interval_us = -1;
	o.size = -1;

	if (argc < 2)
		return usage(NULL);
	cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long n;

#define NEEDV() do { if (!v) return usage("option needs a value"); i++; } while (0)
		if (!strcmp(a, "--bind-dev")) {
			NEEDV();
			o.bind_dev = v;
		} else if (!strcmp(a, "--unicast-if")) {
			NEEDV();
			o.unicast_if = v;
		} else if (!strcmp(a, "--src")) {
			NEEDV();
			o.src = v;
		} else if (!strcmp(a, "--ready-file")) {
			NEEDV();
			o.ready_file = v;
		} else if (!strcmp(a, "--mark")) {
			NEEDV();
			if (parse_long(v, 0, 0xffffffffL, &n))
				return usage("--mark N");
			o.mark = (unsigned long)n;
			o.has_mark = 1;
		} else if (!strcmp(a, "--timeout-ms")) {
			NEEDV();
			if (parse_long(v, 1, 3600000, &o.timeout_ms))
				return usage("--timeout-ms N");
		} else if (!strcmp(a, "--count")) {
			NEEDV();
			if (parse_long(v, 1, 100000000, &o.count))
				return usage("--count N");
		} else if (!strcmp(a, "--interval-us")) {
			NEEDV();
			if (parse_long(v, 0, 60000000, &o.interval_us))
				return usage("--interval-us N");
		} else if (!strcmp(a, "--size")) {
			NEEDV();
			if (parse_long(v, 0, 65000, &o.size))
				return usage("--size N");
		} else if (!strcmp(a, "--seconds")) {
			NEEDV();
			if (parse_long(v, 1, 86400, &o.seconds))
				return usage("--seconds S");
		} else if (!strcmp(a, "--v6")) {
			o.v6 = 1;
		} else if (!strcmp(a, "--tcp")) {
			o.tcp = 1;
		} else if (!strcmp(a, "--unconnected")) {
			o.unconnected = 1;
		} else if (!strcmp(a, "--no-reopen")) {
			o.no_reopen = 1;
		} else if (!strncmp(a, "--", 2) && a[2]) {
			return usage("unknown option");
		} else {
			if (o.npos >= (int)(sizeof(o.pos) / sizeof(o.pos[0])))
				return usage("too many arguments");
			o.pos[o.npos++] = a;
		}
#undef NEEDV
	}

	/* No SA_RESTART: SIGTERM must interrupt poll()/sleeps so listen/flood can report. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(cmd, "connect"))
		return cmd_connect(&o);
	if (!strcmp(cmd, "sendto"))
		return cmd_sendto(&o);
	if (!strcmp(cmd, "flood"))
		return cmd_flood(&o);
	if (!strcmp(cmd, "setsockopt"))
		return cmd_setsockopt(&o);
	if (!strcmp(cmd, "ping"))
		return cmd_ping(&o);
	if (!strcmp(cmd, "raw"))
		return cmd_raw(&o);
	if (!strcmp(cmd, "sendmsg-pktinfo"))
		return cmd_pktinfo(&o);
	if (!strcmp(cmd, "listen"))
		return cmd_listen(&o);
	return usage("unknown subcommand");
}
