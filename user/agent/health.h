/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Health: what the agent's probes saw, and whether a guard opens or closes.
 * Pure: the probes themselves (libcurl, threads) are in probe.c.
 *
 * A guard the agent probes starts CLOSED and opens on the first passing probe.
 * It closes at once when the address seen is a --real-ip or outside every
 * --expect-ip, or when gluetun reports its VPN is not running; it closes after
 * --probe-failures failed probes in a row; it reopens on the next pass. While
 * probes pass (or, with no probe, while the agent runs) the agent renews the
 * guard's lease, so a dead or hung agent closes it when the lease runs out.
 */
#ifndef VG_HEALTH_H
#define VG_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "args.h"
#include "vpnguard.h"

#define VG_DEFAULT_INTERVAL_MS 30000
#define VG_DEFAULT_TIMEOUT_MS  10000
#define VG_DEFAULT_FAILURES    3

struct vg_health_cfg {
	const char *probe_url;      /* NULL: no public-IP probe */
	const char *probe_ca;
	const char *gluetun_url;    /* NULL: no gluetun status */
	unsigned interval_ms, timeout_ms, failures, lease_ms;
	struct vg_addr real_ips[VG_MAX_REAL_IPS];
	int n_real_ips;
	struct vg_cidr expect[VG_MAX_EXPECT];
	int n_expect;
};

/* Defaults filled in; -EINVAL with err naming a bad --real-ip / --expect-ip. */
int vg_health_cfg_build(const struct vg_options *o, struct vg_health_cfg *c, char *err, size_t errlen);

static inline bool vg_health_probes(const struct vg_health_cfg *c)
{
	return c->probe_url || c->gluetun_url;
}

/* One round of probes, as probe.c reports it. */
struct vg_probe_result {
	bool ip_ok;                 /* the probe URL answered with an address */
	struct vg_addr seen;
	bool gluetun_ok;            /* gluetun answered with a status */
	char gluetun_status[32];
	char error[160];            /* why the round failed, for the log */
	double duration_s;          /* the round's requests, from the first to the last answer */
	int64_t done_ns;            /* wall clock, when the round ended */
};

/*
 * The body of an IP-echo answer: a bare address (text/plain, whitespace
 * around it allowed) or a JSON object with "public_ip" (gluetun) or "ip".
 */
int vg_parse_ip_answer(const char *body, size_t len, struct vg_addr *a);

/* gluetun's /v1/vpn/status answer {"status":"running"}: copies the status. */
int vg_parse_gluetun_status(const char *body, size_t len, char *status, size_t size);

enum vg_verdict { VG_KEEP, VG_OPEN, VG_CLOSE };

struct vg_health {
	bool open;
	unsigned failed;            /* in a row */
};

/* Why a round ended as it did; the log's "why" is vg_why_name's word. */
enum vg_why {
	VG_WHY_PROBE_PASSED,
	VG_WHY_REAL_IP,             /* the tunnel was seen leaving by the real address: a leak */
	VG_WHY_UNEXPECTED_IP,
	VG_WHY_GLUETUN_NOT_RUNNING,
	VG_WHY_PROBE_FAILED,
};

const char *vg_why_name(enum vg_why why);

/* Judges one round: what to do with the guard, and why. *leak: why is VG_WHY_REAL_IP. */
enum vg_verdict vg_health_judge(const struct vg_health_cfg *c, struct vg_health *h,
				const struct vg_probe_result *r, enum vg_why *why, bool *leak);

#endif
