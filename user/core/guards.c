// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "docker.h"
#include "clock.h"
#include "guards.h"
#include "netns.h"
#include "policy.h"
#include "error.h"
#include "steering.h"

static int bad(const char *guard, const char *msg)
{
	vg_error(0, "%s%s%s", guard ? guard : "", guard ? ": " : "", msg);
	return -EINVAL;
}

/* The named guard's place in messages: nothing for the command line's own. */
static const char *where(const struct vg_guard_set *s, const struct vg_guard_spec *g, char *buf, size_t len)
{
	if (!strcmp(g->name, "command line"))
		return NULL;
	snprintf(buf, len, "%s: [guard %s]", s->config_path, g->name);
	return buf;
}

/* g->cgroups[i] was just resolved from FLAG ARG: refuse a cgroup this set already has. */
static int check_new(const struct vg_guard_set *s, const struct vg_guard_spec *g, int i,
		     const char *flag, const char *arg, const char *at)
{
	char err[PATH_MAX + 256];

	if (!strcmp(g->cgroups[i].rel, "/")) {
		snprintf(err, sizeof(err), "%s %s: the root cgroup: that would guard the machine", flag, arg);
		return bad(at, err);
	}
	if (!vg_guard_paths_fit(g->cgroups[i].rel, g->o->netns)) {
		snprintf(err, sizeof(err), "%s %s / --netns %s: path too long to record "
			 "(cgroup below the mount: %zu at most; netns: use /run/netns/NAME)",
			 flag, arg, g->o->netns ? g->o->netns : "-",
			 sizeof(((struct vg_guard_info *)0)->cgroup) - 1);
		return bad(at, err);
	}
	/* Against every cgroup before it, in this guard and the ones read earlier. */
	for (const struct vg_guard_spec *h = s->specs; h <= g; h++)
		for (int j = 0; j < (h == g ? i : h->n_cgroups); j++)
			if (h->cgroups[j].id == g->cgroups[i].id) {
				snprintf(err, sizeof(err), "%s %s: given twice (cgroup %s)", flag, arg,
					 g->cgroups[i].rel);
				return bad(at, err);
			}
	return 0;
}

/* A Docker failure: a name the engine does not know is bad input, the rest is the machine's. */
static int docker_failed(int err, const char *msg, const char *at)
{
	bad(at, msg);
	return err == -ENOENT || err == -EINVAL || err == -EPROTONOSUPPORT ? -EINVAL : err;
}

/* --cgroup paths, then --container names (Docker Engine API), then --tunnel-container. */
static int resolve_cgroups(const struct vg_guard_set *s, struct vg_guard_spec *g, const char *at)
{
	char err[PATH_MAX + 512], sock[PATH_MAX];
	struct vg_docker_target t;
	int rc;

	g->cgroups = calloc(g->o->n_cgroups + g->o->n_containers, sizeof(*g->cgroups));
	if (!g->cgroups && g->o->n_cgroups + g->o->n_containers) {
		return vg_error(-ENOMEM, "%s", at ? at : "attach");
	}
	for (int i = 0; i < g->o->n_cgroups; i++, g->n_cgroups++) {
		if (vg_cgroup_resolve(g->o->cgroups[i], &g->cgroups[i], err, sizeof(err)))
			return bad(at, err);
		if ((rc = check_new(s, g, i, "--cgroup", g->o->cgroups[i], at)))
			return rc;
	}
	if (!g->o->n_containers && !g->o->tunnel_container)
		return 0;
	if ((rc = vg_docker_socket(g->o->docker_host, sock, sizeof(sock), err, sizeof(err))))
		return docker_failed(rc, err, at);
	for (int i = 0; i < g->o->n_containers; i++, g->n_cgroups++) {
		if ((rc = vg_docker_resolve(sock, g->o->containers[i], &t, err, sizeof(err))))
			return docker_failed(rc, err, at);
		g->cgroups[g->n_cgroups] = t.cg;
		if ((rc = check_new(s, g, g->n_cgroups, "--container", g->o->containers[i], at)))
			return rc;
	}
	if (g->o->tunnel_container) {
		if ((rc = vg_docker_resolve(sock, g->o->tunnel_container, &t, err, sizeof(err))))
			return docker_failed(rc, err, at);
		snprintf(g->tunnel_netns, sizeof(g->tunnel_netns), "%s", t.netns);
	}
	return 0;
}

static int open_tunnel(struct vg_attach_req *req, const struct vg_guard_spec *g, const char *at)
{
	const struct vg_options *o = g->o;
	const char *netns = g->tunnel_netns[0] ? g->tunnel_netns : o->netns;
	struct vg_tunnel facts;
	char msg[512];
	int rc;

	req->netns_path = netns;
	req->netns_fd = vg_netns_open(netns);
	if (req->netns_fd < 0) {
		snprintf(msg, sizeof(msg), "--netns %s: %s", netns,
			 req->netns_fd == -EINVAL ? "not a network namespace file" : strerror(-req->netns_fd));
		return bad(at, msg);
	}
	rc = vg_netns_cookie(req->netns_fd, &req->policy.netns_cookie);
	if (!rc)
		rc = vg_tunnel_facts(req->netns_fd, o->tunnel, &facts, NULL);
	if (rc) {
		vg_error(0, "%s%s--tunnel %s: %s in %s", at ? at : "", at ? ": " : "", o->tunnel,
			  rc == -ENODEV ? "no such interface" : strerror(-rc), netns ? netns : "this network namespace");
		return rc == -ENODEV ? -EINVAL : rc;
	}
	return 0;
}

static int prepare_one(struct vg_guard_set *s, struct vg_guard_spec *g, bool by_agent)
{
	struct vg_attach_req *req = &s->reqs[g - s->specs];
	char err[512], buf[PATH_MAX + 128];
	const char *at = where(s, g, buf, sizeof(buf));
	int rc;

	*req = (struct vg_attach_req){ .netns_fd = -1 };
	if (vg_policy_build(g->o, &req->policy, err, sizeof(err)) ||
	    vg_health_cfg_build(g->o, &g->health, err, sizeof(err)))
		return bad(at, err);
	/* The agent renews a lease every interval (after a probe, within its timeout). */
	if (by_agent && g->o->lease_ms &&
	    g->health.lease_ms <= g->health.interval_ms +
				  (vg_health_probes(&g->health) ? g->health.timeout_ms : 0)) {
		snprintf(err, sizeof(err), "--lease %u ms: not longer than the agent renews it "
			 "(every %u ms%s): a healthy guard would close; give a longer --lease",
			 g->health.lease_ms, g->health.interval_ms,
			 vg_health_probes(&g->health) ? ", plus the probe's timeout" : "");
		return bad(at, err);
	}
	if ((rc = resolve_cgroups(s, g, at)))
		return rc;
	req->cgroups = g->cgroups;
	req->n_cgroups = g->n_cgroups;
	if (g->o->tunnel && (rc = open_tunnel(req, g, at)))
		return rc;
	if (req->policy.fwmark && g->n_cgroups > 1)
		return bad(at, "--fwmark and --route-table are one guard's: give them with one --cgroup "
			   "or --container");
	if (req->policy.fwmark && (rc = vg_steering_check(g->cgroups[0].id, req->netns_fd, &req->policy)))
		return rc;
	/* Fail closed: a probed guard opens on its first passing probe, not before. */
	req->state.state = by_agent && vg_health_probes(&g->health) ? VG_STATE_CLOSED : VG_STATE_OPEN;
	if (by_agent || g->o->lease_ms)
		req->state.lease_deadline_ns = vg_boot_ns() + (__u64)g->health.lease_ms * 1000000ULL;
	return 0;
}

int vg_guard_set_prepare(const struct vg_options *cli, bool by_agent, struct vg_guard_set *s)
{
	char err[PATH_MAX + 600];
	int rc;

	memset(s, 0, sizeof(*s));
	s->resolved_ns = vg_real_ns();
	for (int i = 0; i < VG_MAX_CONF_GUARDS + 1; i++)
		s->reqs[i].netns_fd = -1;
	s->log = cli->log;
	s->webhook = cli->webhook;
	s->http = cli->http;
	if (cli->n_cgroups || cli->n_containers)
		s->specs[s->n++] = (struct vg_guard_spec){ .name = "command line", .o = cli };
	if (cli->config || !(cli->n_cgroups || cli->n_containers)) {
		s->config_path = cli->config ? cli->config : VG_DEFAULT_CONFIG;
		rc = vg_config_load(s->config_path, &s->conf, err, sizeof(err));
		if (rc) {
			if (!cli->config && rc == -ENOENT)
				return bad(NULL, "attach: give --cgroup, or guards in " VG_DEFAULT_CONFIG
					   " (it does not exist)");
			bad(NULL, err);
			return rc == -ENOENT || rc == -EINVAL || rc == -EACCES ? -EINVAL : rc;
		}
		s->log = s->log ?: s->conf.log;
		s->webhook = s->webhook ?: s->conf.webhook;
		s->http = s->http ?: s->conf.http;
		for (int i = 0; i < s->conf.n_guards; i++)
			s->specs[s->n++] = (struct vg_guard_spec){
				.name = s->conf.guards[i].name, .o = &s->conf.guards[i].o };
	}
	if (cli->no_agent && (s->webhook || s->http))
		return bad(s->config_path, s->webhook ? "webhook needs the agent: drop --no-agent" :
			   "http needs the agent: drop --no-agent");
	for (int i = 0; i < s->n; i++) {
		if ((rc = prepare_one(s, &s->specs[i], by_agent)))
			return rc;
		/* The sections were checked without knowing --no-agent. */
		if (cli->no_agent && (vg_options_need_agent(s->specs[i].o) ||
				      s->specs[i].o->probe_interval_ms)) {
			snprintf(err, sizeof(err), "[guard %s]: probes and alerts need the agent: drop --no-agent",
				 s->specs[i].name);
			return bad(s->config_path, err);
		}
	}
	return 0;
}

int vg_guard_set_apply(struct vg_guard_set *s, bool keep_state)
{
	for (int i = 0; i < s->n; i++)
		s->reqs[i].keep_state = keep_state;
	return vg_attach(s->reqs, s->n);
}

void vg_guard_set_free(struct vg_guard_set *s)
{
	for (int i = 0; i < VG_MAX_CONF_GUARDS + 1; i++)
		if (s->reqs[i].netns_fd >= 0) {
			close(s->reqs[i].netns_fd);
			s->reqs[i].netns_fd = -1;
		}
	for (int i = 0; i < s->n; i++) {
		free(s->specs[i].cgroups);
		s->specs[i].cgroups = NULL;
	}
	vg_config_free(&s->conf);
}

const struct vg_options *vg_guard_set_docker(const struct vg_guard_set *s)
{
	for (int i = 0; i < s->n; i++)
		if (s->specs[i].o->n_containers || s->specs[i].o->tunnel_container)
			return s->specs[i].o;
	return NULL;
}

bool vg_guard_set_has(const struct vg_guard_set *s, __u64 id)
{
	for (int i = 0; i < s->n; i++)
		for (int j = 0; j < s->specs[i].n_cgroups; j++)
			if (s->specs[i].cgroups[j].id == id)
				return true;
	return false;
}
