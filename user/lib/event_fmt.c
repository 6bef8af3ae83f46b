// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "event_fmt.h"
#include "policy.h"

/* Output in whole units: once one does not fit, nothing after it is written, so what is there is a prefix. */
struct out {
	char *buf;
	size_t len, n;
	bool full;
};

static struct out out_start(char *buf, size_t len)
{
	if (len)
		buf[0] = 0;
	return (struct out){ .buf = buf, .len = len, .full = !len };
}

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->len - o->n) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
	o->buf[o->n] = 0;
}

/* The length of the valid UTF-8 character at p (n bytes there) and its code point; 0 when not valid. */
static size_t utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	static const uint32_t least[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
	uint32_t c;

	if (!len || len > n || p[0] >= 0xf5)
		return 0;
	c = p[0] & (0x7fu >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3fu);
	}
	/* Overlong forms and surrogates would hide a control character from a check like this one. */
	if (c < least[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Controls, and the format characters that reorder a line or break it where no newline is. */
static bool shown_as_is(uint32_t c)
{
	return !(c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
		 (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069));
}

char *vg_text_escape(const char *s, char *buf, size_t len)
{
	static const char *const named[128] = {
		['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",
	};
	const unsigned char *u = (const unsigned char *)s;
	struct out o = out_start(buf, len);
	size_t n = strlen(s);

	for (size_t i = 0, k; i < n && !o.full; i += k) {
		char hex[4 * 4 + 1];
		uint32_t c = u[i];

		k = u[i] < 0x80 ? 1 : utf8_char(u + i, n - i, &c);
		if (u[i] < 0x80 && named[u[i]]) {
			put(&o, named[u[i]], 2);
		} else if (k && shown_as_is(c)) {
			put(&o, s + i, k);
		} else {
			/* The whole character is one unit: never half of its escape. */
			k = k ? k : 1;
			for (size_t j = 0; j < k; j++)
				snprintf(hex + 4 * j, sizeof(hex) - 4 * j, "\\x%02x", u[i + j]);
			put(&o, hex, 4 * k);
		}
	}
	return buf;
}

void vg_format_time(int64_t real_ns, char *buf, size_t len)
{
	/* Rounded down, not toward zero: before 1970 (a clock set wrong) the milliseconds stay 0..999. */
	int64_t rem = real_ns % 1000000000;
	time_t secs = real_ns / 1000000000 - (rem < 0);
	struct tm tm;
	char day[32];

	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", day, (int)((rem < 0 ? rem + 1000000000 : rem) / 1000000));
}

struct json_object *vg_event_to_json(const struct vg_event *e, int64_t boot_to_real_ns,
				     const char *cgroup)
{
	struct json_object *o = json_object_new_object();
	char buf[INET6_ADDRSTRLEN];
	char comm[sizeof(e->comm) + 1];

	/* Added as the kernel's u64 it is: a record's time may be anything, and a signed overflow is UB. */
	vg_format_time((int64_t)(e->time_ns + (uint64_t)boot_to_real_ns), buf, sizeof(buf));
	json_object_object_add(o, "time", json_object_new_string(buf));
	json_object_object_add(o, "event", json_object_new_string(vg_record_name(VG_REC_BLOCKED)));
	json_object_object_add(o, "reason", json_object_new_string(vg_reason_name(e->reason)));
	json_object_object_add(o, "hook", json_object_new_string(vg_hook_name(e->hook)));
	json_object_object_add(o, "cgroup", cgroup ? json_object_new_string(cgroup) : NULL);
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(e->guard_cgroup));
	json_object_object_add(o, "pid", json_object_new_int64(e->pid));
	json_object_object_add(o, "uid", json_object_new_int64(e->uid));
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = 0;
	json_object_object_add(o, "comm", json_object_new_string(comm));
	json_object_object_add(o, "proto", json_object_new_string(vg_proto_name(e->proto)));
	json_object_object_add(o, "family",
			       json_object_new_string(e->family == AF_INET6 ? "ipv6" : "ipv4"));
	/* Hooks that judge no destination (socket creation, options) report none. */
	bool has_dst = e->hook != VG_HOOK_SOCK_CREATE && e->hook != VG_HOOK_SETSOCKOPT;
	json_object_object_add(o, "dst", has_dst ?
			       json_object_new_string(vg_addr_str(&e->dst, buf, sizeof(buf))) : NULL);
	json_object_object_add(o, "dport", has_dst ? json_object_new_int(ntohs(e->dport)) : NULL);
	json_object_object_add(o, "ifindex", json_object_new_int64(e->ifindex));
	return o;
}

const char *vg_json_str(struct json_object *rec, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(rec, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

/*
 * A line being written: the fields it says in words are marked used, and
 * every other field follows as key=value, so nothing a record holds is
 * hidden (a field added to a record shows up before its words do).
 */
struct line {
	struct json_object *rec;
	FILE *f;
	const char *used[32];
	int n_used;
};

/* rec[key] as text (NULL when absent or null), marked as said. */
static const char *field(struct line *l, const char *key)
{
	if (l->n_used < (int)(sizeof(l->used) / sizeof(l->used[0])))
		l->used[l->n_used++] = key;
	return vg_json_str(l->rec, key);
}

static void __attribute__((format(printf, 2, 3))) say(struct line *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(l->f, fmt, ap);
	va_end(ap);
}

/* The fields no words said, as key=value (null as -). */
static void the_rest(struct line *l)
{
	json_object_object_foreach(l->rec, key, val) {
		bool said = !strcmp(key, "time") || !strcmp(key, "event");

		for (int i = 0; i < l->n_used && !said; i++)
			said = !strcmp(key, l->used[i]);
		if (!said)
			say(l, " %s=%s", key, val ? json_object_get_string(val) : "-");
	}
}

/* "guard NAME (/a, /b)": a state or probe record's guard and its cgroups. */
static void guard_words(struct line *l)
{
	struct json_object *cgs = json_object_object_get(l->rec, "cgroups");
	const char *name = field(l, "guard");

	field(l, "cgroups");
	say(l, "guard %s", name ?: "?");
	if (!json_object_is_type(cgs, json_type_array)) {
		if (cgs)
			say(l, " (%s)", json_object_get_string(cgs));
		return;
	}
	for (size_t i = 0; i < json_object_array_length(cgs); i++)
		say(l, "%s%s", i ? ", " : " (", json_object_get_string(json_object_array_get_idx(cgs, i)) ?: "-");
	if (json_object_array_length(cgs))
		say(l, ")");
}

/* A check: what it found in words, then the why word itself, what it saw, how long it took. */
static void check_words(struct line *l, bool state)
{
	static const struct { const char *why, *check, *state; } words[] = {
		{ "probe_passed", "passed", "the check passed" },
		{ "real_ip", "saw the REAL address: a leak", "LEAK: the check saw the real address" },
		{ "unexpected_ip", "saw an address outside --expect-ip", "the check saw an address outside --expect-ip" },
		{ "gluetun_not_running", "found gluetun not running", "gluetun is not running" },
		{ "probe_failed", "failed", "the check failed" },
	};
	const char *why = field(l, "why"), *seen = field(l, "seen"), *gluetun = field(l, "gluetun"),
		   *error = field(l, "error"), *in_a_row = field(l, "failed_in_a_row"),
		   *duration = field(l, "duration_s"), *text = why ?: "no verdict";

	for (size_t i = 0; why && i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(why, words[i].why))
			text = state ? words[i].state : words[i].check;
	say(l, ": %s", text);
	if (why)
		say(l, " [%s]", why);
	if (seen)
		say(l, ", address seen %s", seen);
	if (gluetun)
		say(l, ", gluetun %s", gluetun);
	if (in_a_row)
		say(l, ", %s in a row", in_a_row);
	if (duration)
		say(l, ", in %.3f s", json_object_get_double(json_object_object_get(l->rec, "duration_s")));
	if (error)
		say(l, ": %s", error);
}

static void tunnel_words(struct line *l, bool up)
{
	const char *tunnel = field(l, "tunnel"), *ifindex = field(l, "ifindex"), *id = field(l, "cgroup_id"),
		   *after = field(l, "map_updated_after_us");

	say(l, "TUNNEL %s %s (ifindex %s) for the guard of cgroup id %s", up ? "UP" : "DOWN", tunnel ?: "?",
	    ifindex ?: "?", id ?: "?");
	if (after)
		say(l, ", maps updated %s us after netlink said so", after);
}

static void reload_words(struct line *l)
{
	const char *trigger = field(l, "trigger"), *config = field(l, "config"), *result = field(l, "result"),
		   *guards = field(l, "guards"), *detached = field(l, "detached"), *error = field(l, "error");

	say(l, "reload (%s) of %s: %s", trigger ?: "?", config ?: "the command line", result ?: "?");
	if (guards)
		say(l, ", %s guard%s", guards, strcmp(guards, "1") ? "s" : "");
	if (detached)
		say(l, ", %s cgroup%s detached", detached, strcmp(detached, "1") ? "s" : "");
	if (error)
		say(l, ": %s", error);
}

static void docker_words(struct line *l)
{
	const char *container = field(l, "container"), *id = field(l, "id"), *action = field(l, "action"),
		   *error = field(l, "error"), *reload = field(l, "reload"), *after = field(l, "after_start_ms"),
		   *gone = field(l, "gone_s");

	if (container || id)
		say(l, "docker: container %s (id %.12s) %s", container ?: "?", id ?: "?", action ?: "?");
	else if (action && !strcmp(action, "engine_gone"))
		say(l, "docker: the engine is gone");
	else if (action && !strcmp(action, "engine_back") && gone)
		say(l, "docker: the engine is back after %.1f s",
		    json_object_get_double(json_object_object_get(l->rec, "gone_s")));
	else
		say(l, "docker: the engine's events %s", action && !strcmp(action, "lost") ? "were lost" :
		    action ?: "?");
	if (error)
		say(l, ": %s", error);
	if (reload)
		say(l, "; reload %s", reload);
	if (after)
		say(l, ", %.1f ms after it started",
		    json_object_get_double(json_object_object_get(l->rec, "after_start_ms")));
}

/* "scan reason=" and "comm=" as before: scripts and tests look for those words of a scan's line. */
static void scan_words(struct line *l)
{
	const char *reason = field(l, "reason"), *pid = field(l, "pid"), *comm = field(l, "comm"),
		   *cgroup = field(l, "cgroup"), *guard = field(l, "guard"), *guard_id = field(l, "guard_id"),
		   *cpid = field(l, "container_pid"), *detail = field(l, "detail");

	say(l, "scan reason=%s: pid %s (comm=%s) in %s escapes its guard %s (cgroup id %s)", reason ?: "?", pid ?: "?",
	    comm ?: "?", cgroup ?: "?", guard ?: "?", guard_id ?: "?");
	if (cpid)
		say(l, ", container pid %s", cpid);
	if (detail)
		say(l, ": %s", detail);
}

static void pins_words(struct line *l)
{
	const char *why = field(l, "why"), *root = field(l, "pin_root"), *action = field(l, "action"),
		   *pins = field(l, "pins"), *error = field(l, "error");

	say(l, "PINS under %s: %s (%s)", root ?: "?", action && !strcmp(action, "restored") ? "made again" :
	    action && !strcmp(action, "lost") ? "could not be made again" : action ?: "?", why ?: "?");
	if (pins)
		say(l, ", %s pin%s", pins, strcmp(pins, "1") ? "s" : "");
	if (error)
		say(l, ": %s", error);
}

static void blocked_words(struct line *l)
{
	const char *dst = field(l, "dst"), *dport = field(l, "dport"), *proto = field(l, "proto"),
		   *family = field(l, "family"), *cgroup = field(l, "cgroup"), *id = field(l, "cgroup_id");
	char where[INET6_ADDRSTRLEN + 16];

	if (!dst)
		snprintf(where, sizeof(where), "%s socket", proto && *proto ? proto : "a");
	else if (family && !strcmp(family, "ipv6"))
		snprintf(where, sizeof(where), "[%s]:%s", dst, dport ?: "0");
	else
		snprintf(where, sizeof(where), "%s:%s", dst, dport ?: "0");
	say(l, "BLOCKED %-4s %-22s %-11s by %s (pid %s) in %s, hook %s", dst && proto ? proto : "", where,
	    field(l, "reason") ?: "-", field(l, "comm") ?: "?", field(l, "pid") ?: "?", cgroup ?: id ?: "?",
	    field(l, "hook") ?: "?");
	/* As it always was up to here (scripts match it); then what else the record holds. */
	const char *uid = field(l, "uid"), *ifindex = field(l, "ifindex");

	if (uid)
		say(l, ", uid %s", uid);
	if (ifindex && strcmp(ifindex, "0"))
		say(l, ", ifindex %s", ifindex);
	field(l, "family");     /* the address's form says it */
	if (cgroup)
		field(l, "cgroup_id");
}

/* The line, unescaped, to f: every value in it may come from a record someone else wrote. */
static void record_line(struct json_object *rec, FILE *f)
{
	struct line l = { .rec = rec, .f = f };
	const char *event;

	if (!json_object_is_type(rec, json_type_object)) {
		fprintf(f, "- unreadable record %s", json_object_to_json_string(rec));
		return;
	}
	event = vg_json_str(rec, "event");
	say(&l, "%s ", vg_json_str(rec, "time") ?: "-");
	if (!event) {
		say(&l, "record");
	} else if (!strcmp(event, "blocked")) {
		blocked_words(&l);
	} else if (!strcmp(event, "state")) {
		const char *state = field(&l, "state");

		say(&l, "%s ", !state ? "STATE ?" : !strcmp(state, "open") ? "OPEN" :
		    !strcmp(state, "closed") ? "CLOSED" : state);
		guard_words(&l);
		check_words(&l, true);
	} else if (!strcmp(event, "probe")) {
		say(&l, "check of ");
		guard_words(&l);
		check_words(&l, false);
	} else if (!strcmp(event, "tunnel_up") || !strcmp(event, "tunnel_down")) {
		tunnel_words(&l, !strcmp(event, "tunnel_up"));
	} else if (!strcmp(event, "reload")) {
		reload_words(&l);
	} else if (!strcmp(event, "docker")) {
		docker_words(&l);
	} else if (!strcmp(event, "scan")) {
		scan_words(&l);
	} else if (!strcmp(event, "pins")) {
		pins_words(&l);
	} else if (!strcmp(event, "log")) {
		const char *lost = field(&l, "lost");

		say(&l, "log: %s record%s could not be written", lost ?: "?", lost && !strcmp(lost, "1") ? "" : "s");
	} else {
		say(&l, "%s", event);
	}
	the_rest(&l);
}

void vg_record_to_line(struct json_object *rec, char *buf, size_t len)
{
	char *raw = NULL;
	size_t n;
	FILE *f = open_memstream(&raw, &n);

	if (f) {
		record_line(rec, f);
		fclose(f);
	}
	vg_text_escape(raw ? raw : "", buf, len);
	free(raw);
}

void vg_text_printf(char *buf, size_t len, const char *fmt, ...)
{
	char *raw = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	vg_text_escape(n >= 0 ? raw : "", buf, len);
	if (n >= 0)
		free(raw);
}

static const char *const record_names[] = {
	[VG_REC_BLOCKED] = "blocked",
	[VG_REC_TUNNEL_UP] = "tunnel_up",
	[VG_REC_TUNNEL_DOWN] = "tunnel_down",
	[VG_REC_PROBE] = "probe",
	[VG_REC_STATE] = "state",
	[VG_REC_RELOAD] = "reload",
	[VG_REC_DOCKER] = "docker",
	[VG_REC_SCAN] = "scan",
	[VG_REC_PINS] = "pins",
	[VG_REC_LOG] = "log",
};

const char *vg_record_name(enum vg_record kind)
{
	return kind < sizeof(record_names) / sizeof(record_names[0]) ? record_names[kind] : "unknown";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static int fixed_digits(const char **p, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -EINVAL;
		*v = *v * 10 + (unsigned)(**p - '0');
	}
	return 0;
}

int vg_parse_time(const char *s, int64_t *ns)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, frac = 0, scale = 1000000000;
	const char *p = s;

	if (!s || fixed_digits(&p, 4, &y) || *p++ != '-' || fixed_digits(&p, 2, &mo) || *p++ != '-' ||
	    fixed_digits(&p, 2, &d) || *p++ != 'T' || fixed_digits(&p, 2, &h) || *p++ != ':' ||
	    fixed_digits(&p, 2, &mi) || *p++ != ':' || fixed_digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++)
			if (scale > 1)
				frac = frac * 10 + (unsigned)(*p - '0'), scale /= 10;
	}
	/* ns since 1970 in 64 bits reach 2262: a record of another age is no record of ours. */
	if (strcmp(p, "Z") || y < 1970 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	*ns = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000000000LL) + (int64_t)frac * scale;
	return 0;
}
