// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "netns.h"
#include "policy.h"
#include "steer.h"
#include "vpnguard.skel.h"

/* Debian 12's uapi headers predate tcx (Linux 6.6); the value is fixed ABI. */
#define VG_BPF_TCX_EGRESS 47
#define VG_MAX_LINKS 64

static const char *const map_names[] = {
	"vg_policy", "vg_state", "vg_guards", "vg_tunnels",
	"vg_counters", "vg_ratelimit", "vg_events", "vg_tundev",
};

/* What an attach changed, so a failure can put everything back. */
struct saved_entry {
	int map_fd;
	char key[sizeof(struct vg_tunnel_key)];
	void *old;                  /* NULL: the key was absent */
};

/*
 * A guard whose steering an attach made or changed: what a rollback puts
 * back, and what a success retires (the old mark's rules, when it changed).
 */
struct steer_change {
	int netns_fd;               /* the new policy's namespace (owned) */
	struct vg_policy policy;
	bool made;                  /* the mark's rule is new */
	bool had_old;
	struct vg_policy old;
	struct vg_guard_info old_info;
};

struct txn {
	char **pins;
	int n_pins;
	struct saved_entry *entries;
	int n_entries;
	struct steer_change *steers;
	int n_steers;
	bool made_root;
};

static int report(int err, const char *what, const char *obj)
{
	fprintf(stderr, "vpnguard-bpf: %s %s: %s\n", what, obj, strerror(err < 0 ? -err : err));
	return err < 0 ? err : -err;
}

int vg_bpffs_ensure(void)
{
	struct statfs fs;

	if (!statfs("/sys/fs/bpf", &fs) && fs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return report(-errno, "mount bpffs on", "/sys/fs/bpf");
	return 0;
}

int vg_map_open(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), VG_PIN_ROOT "/%s", name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static void guard_dir(char *buf, size_t len, __u64 id)
{
	snprintf(buf, len, VG_PIN_ROOT "/%" PRIu64, (uint64_t)id);
}

static int txn_add_pin(struct txn *t, const char *path)
{
	char **p = realloc(t->pins, (t->n_pins + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	t->pins = p;
	t->pins[t->n_pins] = strdup(path);
	return t->pins[t->n_pins++] ? 0 : -ENOMEM;
}

/* Writes key=val after saving what was there, for txn_rollback. */
static int txn_update(struct txn *t, int map_fd, const void *key, size_t ksz,
		      const void *val, size_t vsz)
{
	struct saved_entry *e = realloc(t->entries, (t->n_entries + 1) * sizeof(*e));

	if (!e)
		return -ENOMEM;
	t->entries = e;
	e = &t->entries[t->n_entries];
	memset(e, 0, sizeof(*e));
	e->old = malloc(vsz);
	if (!e->old)
		return -ENOMEM;
	/* Its own descriptor: the skeleton that lent map_fd is gone before a rollback. */
	e->map_fd = dup(map_fd);
	if (e->map_fd < 0) {
		free(e->old);
		return -errno;
	}
	memcpy(e->key, key, ksz);
	t->n_entries++;
	if (bpf_map_lookup_elem(map_fd, key, e->old)) {
		free(e->old);
		e->old = NULL;
	}
	return bpf_map_update_elem(map_fd, key, val, BPF_ANY) ? -errno : 0;
}

/* Notes that key was absent from map_fd before this attach wrote it (elsewhere), for txn_rollback. */
static int txn_note_new(struct txn *t, int map_fd, const void *key, size_t ksz)
{
	struct saved_entry *e = realloc(t->entries, (t->n_entries + 1) * sizeof(*e));

	if (!e)
		return -ENOMEM;
	t->entries = e;
	e = &t->entries[t->n_entries];
	memset(e, 0, sizeof(*e));
	e->map_fd = dup(map_fd);
	if (e->map_fd < 0)
		return -errno;
	memcpy(e->key, key, ksz);
	t->n_entries++;
	return 0;
}

static void txn_free(struct txn *t)
{
	for (int i = 0; i < t->n_pins; i++)
		free(t->pins[i]);
	for (int i = 0; i < t->n_entries; i++) {
		free(t->entries[i].old);
		close(t->entries[i].map_fd);
	}
	for (int i = 0; i < t->n_steers; i++)
		close(t->steers[i].netns_fd);
	free(t->pins);
	free(t->entries);
	free(t->steers);
}

static int steer_guard(int netns_fd, const struct vg_policy *p, bool *made);
static void steer_rollback(const struct steer_change *c);

static void remove_root_if_empty(void);

static void txn_rollback(struct txn *t)
{
	/* Links first, so no program runs on restored or removed entries. */
	for (int i = t->n_pins - 1; i >= 0; i--) {
		unlink(t->pins[i]);
		char *slash = strrchr(t->pins[i], '/');
		*slash = 0;
		rmdir(t->pins[i]); /* the guard's directory, if this attach made it */
	}
	for (int i = t->n_steers - 1; i >= 0; i--)
		steer_rollback(&t->steers[i]);
	for (int i = t->n_entries - 1; i >= 0; i--) {
		struct saved_entry *e = &t->entries[i];

		if (e->old)
			bpf_map_update_elem(e->map_fd, e->key, e->old, BPF_ANY);
		else
			bpf_map_delete_elem(e->map_fd, e->key);
	}
	if (t->made_root)
		remove_root_if_empty();
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("VPNGUARD_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static struct vpnguard_bpf *guard_load(__u64 id, __u32 level)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = VG_PIN_ROOT);
	struct vpnguard_bpf *skel;
	int err, pin_fd;

	libbpf_set_print(libbpf_quiet);
	skel = vpnguard_bpf__open_opts(&opts);
	if (!skel) {
		report(-errno, "open BPF object", "vpnguard");
		return NULL;
	}
	skel->rodata->guard_cgroup_id = id;
	skel->rodata->guard_cgroup_level = level;
	pin_fd = bpf_obj_get(VG_PIN_ROOT "/vg_tundev");
	err = pin_fd >= 0 ? bpf_map__reuse_fd(skel->maps.vg_tundev, pin_fd) : 0;
	if (pin_fd >= 0)
		close(pin_fd);
	if (!err)
		err = vpnguard_bpf__load(skel);
	if (!err && pin_fd < 0 && (err = bpf_map__pin(skel->maps.vg_tundev, VG_PIN_ROOT "/vg_tundev")))
		report(err, "pin map", VG_PIN_ROOT "/vg_tundev");
	else if (err)
		report(err, "load BPF programs (VPNGUARD_DEBUG=1 shows the verifier log) of",
		       "vpnguard.bpf.o");
	if (err) {
		vpnguard_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static int pin_link(struct txn *t, int link_fd, const char *path)
{
	int err = bpf_obj_pin(link_fd, path) ? -errno : 0;

	if (err)
		return report(err, "pin link", path);
	return t ? txn_add_pin(t, path) : 0;
}

static int attach_cgroup_links(struct txn *t, struct vpnguard_bpf *skel, const struct vg_cgroup *cg)
{
	/* The per-packet guarantee first: from its first moment nothing leaks. */
	struct bpf_program *progs[] = {
		skel->progs.vg_egress, skel->progs.vg_sock_create, skel->progs.vg_setsockopt,
		skel->progs.vg_connect4, skel->progs.vg_connect6,
		skel->progs.vg_sendmsg4, skel->progs.vg_sendmsg6,
	};
	char path[PATH_MAX];
	int cg_fd, err = 0;

	cg_fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return report(-errno, "open cgroup", cg->path);
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]) && !err; i++) {
		const char *name = bpf_program__name(progs[i]) + strlen("vg_");
		struct bpf_link *link;

		snprintf(path, sizeof(path), VG_PIN_ROOT "/%" PRIu64 "/%s", (uint64_t)cg->id, name);
		if (!access(path, F_OK))
			continue; /* a guard being replaced keeps its links */
		link = bpf_program__attach_cgroup(progs[i], cg_fd);
		if (!link) {
			err = report(-errno, "attach program to cgroup", cg->path);
			break;
		}
		err = pin_link(t, bpf_link__fd(link), path);
		bpf_link__destroy(link); /* the pin holds it now */
	}
	close(cg_fd);
	return err;
}

struct tcx_req {
	int prog_fd;
	int ifindex;
};

static int tcx_attach_here(void *arg)
{
	struct tcx_req *req = arg;
	int fd = bpf_link_create(req->prog_fd, req->ifindex, VG_BPF_TCX_EGRESS, NULL);

	return fd < 0 ? -errno : fd;
}

static void tc_pin_path(char *buf, size_t len, __u64 id, __u64 cookie, int ifindex)
{
	snprintf(buf, len, VG_PIN_ROOT "/%" PRIu64 "/tc_%" PRIu64 "_%d",
		 (uint64_t)id, (uint64_t)cookie, ifindex);
}

/* A guard's programs, loaded only once a link needs them (loading verifies them all). */
struct guard_progs {
	__u64 id;
	__u32 level;
	struct vpnguard_bpf *skel;
};

static struct vpnguard_bpf *guard_progs_get(struct guard_progs *g)
{
	if (!g->skel)
		g->skel = guard_load(g->id, g->level);
	return g->skel;
}

/* tc links on every interface of the tunnel's namespace but lo and the tunnel. */
static int attach_tc_links(struct txn *t, struct guard_progs *g, const struct vg_policy *p,
			   int netns_fd)
{
	struct vg_link links[VG_MAX_LINKS];
	char path[PATH_MAX];
	int n = vg_netns_links(netns_fd, links, VG_MAX_LINKS);

	if (n < 0)
		return report(n, "list interfaces of the tunnel's namespace for guard", p->tunnel);
	for (int i = 0; i < n; i++) {
		struct tcx_req req = { .ifindex = links[i].ifindex };
		int fd, err;

		if (links[i].ifindex == 1 || !strcmp(links[i].name, p->tunnel))
			continue;
		tc_pin_path(path, sizeof(path), g->id, p->netns_cookie, links[i].ifindex);
		if (!access(path, F_OK))
			continue;
		if (!guard_progs_get(g))
			return -EINVAL;
		req.prog_fd = bpf_program__fd(g->skel->progs.vg_tc_egress);
		fd = vg_netns_run(netns_fd, tcx_attach_here, &req);
		if (fd < 0)
			return report(fd, "attach tc egress program to interface", links[i].name);
		err = pin_link(t, fd, path);
		close(fd);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Removes tc pins of a guard that name another namespace or a vanished
 * interface; netns_fd < 0 (gateway mode) removes them all. When the
 * interfaces cannot be listed, nothing is removed: pruning only ever
 * withdraws enforcement, so it must not act on a guess.
 */
static void prune_tc_links(__u64 id, const struct vg_policy *p, int netns_fd)
{
	struct vg_link links[VG_MAX_LINKS];
	char dir[PATH_MAX], want[PATH_MAX], path[PATH_MAX * 2];
	int n = netns_fd < 0 ? 0 : vg_netns_links(netns_fd, links, VG_MAX_LINKS);
	struct dirent *de;
	DIR *d;

	if (n < 0)
		return;
	guard_dir(dir, sizeof(dir), id);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		bool keep = false;

		if (strncmp(de->d_name, "tc_", 3))
			continue;
		for (int i = 0; i < n && !keep; i++) {
			tc_pin_path(want, sizeof(want), id, p->netns_cookie, links[i].ifindex);
			keep = !strcmp(strrchr(want, '/') + 1, de->d_name);
		}
		if (!keep) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

/* A vg_tundev slot no vg_tunnels entry holds; 0 when all are taken. */
static __u32 free_tundev_slot(int tunnels_fd)
{
	bool used[VG_MAX_GUARDS + 1] = { false };
	struct vg_tunnel_key key, next;
	struct vg_tunnel t;

	for (void *prev = NULL; !bpf_map_get_next_key(tunnels_fd, prev, &next); prev = &key) {
		key = next;
		if (!bpf_map_lookup_elem(tunnels_fd, &key, &t) && t.slot <= VG_MAX_GUARDS)
			used[t.slot] = true;
	}
	for (__u32 s = 1; s <= VG_MAX_GUARDS; s++)
		if (!used[s])
			return s;
	return 0;
}

struct tundev_req {
	int map_fd;
	__u32 slot;
	struct vg_tundev dev;
};

/* A device map takes its ifindex in the updater's namespace. */
static int tundev_write_here(void *arg)
{
	struct tundev_req *req = arg;

	return bpf_map_update_elem(req->map_fd, &req->slot, &req->dev, BPF_ANY) ? -errno : 0;
}

/*
 * The tunnel's entry in vg_tunnels and its device in vg_tundev. The device
 * first: once vg_tunnels names an ifindex, vg_tundev holds it (the programs
 * want both to agree).
 */
static int write_tunnel_facts(struct txn *t, int map_fd, int tundev_fd, const struct vg_policy *p,
			      int netns_fd)
{
	struct vg_tunnel_key key = { .netns_cookie = p->netns_cookie };
	struct vg_tunnel facts, old;
	struct tundev_req dev = { .map_fd = tundev_fd };
	bool had;
	int err;

	memcpy(key.ifname, p->tunnel, sizeof(key.ifname));
	had = !bpf_map_lookup_elem(map_fd, &key, &old);
	err = vg_tunnel_facts(netns_fd, p->tunnel, &facts, &dev.dev.ifindex);
	if (err == -ENODEV) {
		/*
		 * Gone: ifindex 0 makes the programs deny with no_tunnel until it is
		 * back (the kernel dropped its vg_tundev entry already), and the last
		 * addresses stay so that tc still drops packets sent with them by
		 * another way out.
		 */
		if (!had)
			return 0;
		old.ifindex = 0;
		return bpf_map_update_elem(map_fd, &key, &old, BPF_ANY) ?
		       report(-errno, "write vg_tunnels entry for", p->tunnel) : 0;
	}
	if (err)
		return report(err, "read tunnel interface", p->tunnel);
	facts.slot = dev.slot = had ? old.slot : free_tundev_slot(map_fd);
	if (!facts.slot)
		return report(-ENOSPC, "find a vg_tundev slot for", p->tunnel);
	if (t && bpf_map_lookup_elem(tundev_fd, &dev.slot, &(struct vg_tundev){ 0 }) &&
	    (err = txn_note_new(t, tundev_fd, &dev.slot, sizeof(dev.slot))))
		return report(err, "write vg_tundev entry for", p->tunnel);
	err = vg_netns_run(netns_fd, tundev_write_here, &dev);
	if (err == -ENODEV)
		return 0; /* gone meanwhile: vg_tunnels keeps what it said, no_tunnel holds */
	if (err)
		return report(err, "write vg_tundev entry for", p->tunnel);
	if (t)
		err = txn_update(t, map_fd, &key, sizeof(key), &facts, sizeof(facts));
	else
		err = bpf_map_update_elem(map_fd, &key, &facts, BPF_ANY) ? -errno : 0;
	return err ? report(err, "write vg_tunnels entry for", p->tunnel) : 0;
}

/* Makes the namespace route p's marked sockets into its tunnel (steer.h). */
static int steer_guard(int netns_fd, const struct vg_policy *p, bool *made)
{
	struct vg_steer s = { .fwmark = p->fwmark, .table = p->route_table };
	struct vg_tunnel facts;
	int err;

	if (made)
		*made = false;
	if (p->mode != VG_MODE_TUNNEL || !p->fwmark)
		return 0;
	err = vg_tunnel_facts(netns_fd, p->tunnel, &facts, NULL);
	if (err && err != -ENODEV)
		return report(err, "read tunnel interface", p->tunnel);
	s.tun_ifindex = err ? 0 : facts.ifindex;
	s.n_allow = vg_policy_allow4(p, s.allow, VG_MAX_ALLOW);
	err = vg_steer_apply(netns_fd, &s, made);
	if (err)
		fprintf(stderr, "vpnguard-bpf: route fwmark 0x%x into %s (rules at priority %u-%u, "
			"table %u): %s\n", p->fwmark, p->tunnel, VG_RULE_PREF_ALLOW, VG_RULE_PREF_MARK,
			p->route_table, strerror(-err));
	return err;
}

/* A rollback: the old policy's steering back, or none where there was none. */
static void steer_rollback(const struct steer_change *c)
{
	const struct vg_policy *o = &c->old;
	bool same = c->had_old && o->mode == VG_MODE_TUNNEL && o->fwmark == c->policy.fwmark &&
		    o->netns_cookie == c->policy.netns_cookie;

	if (same)
		steer_guard(c->netns_fd, o, NULL);
	else if (c->made)
		vg_steer_remove(c->netns_fd, c->policy.fwmark, c->policy.route_table);
}

/* Opens the namespace a guard was attached for, if it is still the one its policy names. */
static int guard_netns_open(const struct vg_guard_info *info, __u64 cookie)
{
	char path[sizeof(info->netns) + 1];
	__u64 now;
	int fd;

	snprintf(path, sizeof(path), "%s", info->netns);
	fd = vg_netns_open(path[0] ? path : NULL);
	if (fd >= 0 && (vg_netns_cookie(fd, &now) || now != cookie)) {
		close(fd);
		fd = -ENOENT;
	}
	return fd;
}

/* Takes out the rules and routes of an old policy whose mark or namespace the new one left. */
static void steer_retire(const struct steer_change *c)
{
	const struct vg_policy *o = &c->old;
	int fd;

	if (!c->had_old || o->mode != VG_MODE_TUNNEL || !o->fwmark ||
	    (c->policy.mode == VG_MODE_TUNNEL && o->fwmark == c->policy.fwmark &&
	     o->netns_cookie == c->policy.netns_cookie))
		return;
	fd = guard_netns_open(&c->old_info, o->netns_cookie);
	if (fd < 0)
		return; /* that namespace is gone, and its rules with it */
	vg_steer_remove(fd, o->fwmark, o->route_table);
	close(fd);
}

/* Does another guard in p's namespace use p's mark or table? */
static bool steering_clashes(int policy_fd, __u64 id, const struct vg_policy *p)
{
	__u64 key, next;
	struct vg_policy q;

	for (void *prev = NULL; !bpf_map_get_next_key(policy_fd, prev, &next); prev = &key) {
		key = next;
		if (key != id && !bpf_map_lookup_elem(policy_fd, &key, &q) &&
		    q.mode == VG_MODE_TUNNEL && q.netns_cookie == p->netns_cookie &&
		    (q.fwmark == p->fwmark || q.route_table == p->route_table))
			return true;
	}
	return false;
}

/*
 * The mark and table of a tunnel-mode guard: the ones given, the ones it
 * had in the same namespace, or the first VG_FWMARK_BASE + n pair that no
 * guard and no rule of the namespace uses.
 */
static int choose_steering(int policy_fd, __u64 id, int netns_fd, const struct vg_policy *old,
			   struct vg_policy *p)
{
	bool kept = old && old->mode == VG_MODE_TUNNEL && old->fwmark &&
		    old->netns_cookie == p->netns_cookie;
	bool taken;
	int err;

	if (p->mode != VG_MODE_TUNNEL) {
		p->fwmark = p->route_table = 0;
		return 0;
	}
	if (!p->fwmark && kept) {
		p->fwmark = old->fwmark;
		p->route_table = old->route_table;
		return 0;
	}
	/* Given ones that clash are bad input (-EINVAL), as a bad word would be. */
	if (p->fwmark) {
		if (steering_clashes(policy_fd, id, p)) {
			fprintf(stderr, "vpnguard-bpf: --fwmark 0x%x / --route-table %u: another guard in "
				"the namespace of %s uses the same mark or table\n", p->fwmark, p->route_table,
				p->tunnel);
			return -EINVAL;
		}
		if (kept && old->fwmark == p->fwmark && old->route_table == p->route_table)
			return 0;
		if ((err = vg_steer_taken(netns_fd, p->fwmark, p->route_table, &taken)))
			return report(err, "list routing rules of the namespace of", p->tunnel);
		if (taken)
			fprintf(stderr, "vpnguard-bpf: --fwmark 0x%x / --route-table %u: a routing rule in "
				"the namespace of %s already uses the same mark or table\n", p->fwmark,
				p->route_table, p->tunnel);
		return taken ? -EINVAL : 0;
	}
	for (__u32 n = 1; n <= VG_MAX_GUARDS; n++) {
		p->fwmark = p->route_table = VG_FWMARK_BASE + n;
		if (steering_clashes(policy_fd, id, p))
			continue;
		if ((err = vg_steer_taken(netns_fd, p->fwmark, p->route_table, &taken)))
			return report(err, "list routing rules of the namespace of", p->tunnel);
		if (!taken)
			return 0;
	}
	return report(-ENOSPC, "find a free fwmark and routing table for", p->tunnel);
}

/* Steers one guard of an attach, remembering what to undo. */
static int txn_steer(struct txn *t, const struct vg_attach_req *req, const struct vg_policy *p,
		     const struct vg_policy *old, const struct vg_guard_info *old_info)
{
	struct steer_change *c = realloc(t->steers, (t->n_steers + 1) * sizeof(*c));

	if (!c)
		return -ENOMEM;
	t->steers = c;
	c = &t->steers[t->n_steers];
	memset(c, 0, sizeof(*c));
	c->policy = *p;
	c->had_old = old != NULL;
	if (old) {
		c->old = *old;
		c->old_info = *old_info;
	}
	c->netns_fd = req->netns_fd >= 0 ? dup(req->netns_fd) : -1;
	if (p->mode == VG_MODE_TUNNEL && c->netns_fd < 0)
		return -errno;
	t->n_steers++;
	return p->mode == VG_MODE_TUNNEL ? steer_guard(c->netns_fd, p, &c->made) : 0;
}

static int ensure_root(struct txn *t)
{
	int err = vg_bpffs_ensure();

	if (err)
		return err;
	if (!mkdir(VG_PIN_ROOT, 0700))
		t->made_root = true;
	else if (errno != EEXIST)
		return report(-errno, "create", VG_PIN_ROOT);
	return 0;
}

bool vg_guard_paths_fit(const char *cgroup_rel, const char *netns_path)
{
	struct vg_guard_info info;

	return strlen(cgroup_rel) < sizeof(info.cgroup) &&
	       (!netns_path || strlen(netns_path) < sizeof(info.netns));
}

static int attach_one(struct txn *t, const struct vg_attach_req *req, const struct vg_cgroup *cg)
{
	struct vg_policy policy = req->policy, old;
	struct vg_state old_state;
	struct vg_guard_info info = { 0 }, old_info = { 0 };
	struct vpnguard_bpf *skel;
	char dir[PATH_MAX];
	__u64 id = cg->id;
	bool had_old;
	int err;

	/* Both paths fit: vg_guard_paths_fit, checked by the caller. */
	memcpy(info.cgroup, cg->rel, strlen(cg->rel));
	if (req->netns_path)
		memcpy(info.netns, req->netns_path, strlen(req->netns_path));
	struct guard_progs progs = { id, cg->level, guard_load(id, cg->level) };
	skel = progs.skel;
	if (!skel)
		return -EINVAL;

	had_old = !bpf_map_lookup_elem(bpf_map__fd(skel->maps.vg_policy), &id, &old);
	if (had_old)
		bpf_map_lookup_elem(bpf_map__fd(skel->maps.vg_guards), &id, &old_info);
	err = choose_steering(bpf_map__fd(skel->maps.vg_policy), id, req->netns_fd,
			      had_old ? &old : NULL, &policy);
	if (err)
		goto out;
	/* Maps before links: a program never runs without its policy. */
	err = txn_update(t, bpf_map__fd(skel->maps.vg_policy), &id, sizeof(id), &policy, sizeof(policy));
	if (!err && !(req->keep_state &&
		      !bpf_map_lookup_elem(bpf_map__fd(skel->maps.vg_state), &id, &old_state)))
		err = txn_update(t, bpf_map__fd(skel->maps.vg_state), &id, sizeof(id),
				 &req->state, sizeof(req->state));
	if (!err)
		err = txn_update(t, bpf_map__fd(skel->maps.vg_guards), &id, sizeof(id),
				 &info, sizeof(info));
	if (err) {
		report(err, "write maps for cgroup", cg->path);
		goto out;
	}
	if (policy.mode == VG_MODE_TUNNEL) {
		err = write_tunnel_facts(t, bpf_map__fd(skel->maps.vg_tunnels),
					 bpf_map__fd(skel->maps.vg_tundev), &policy, req->netns_fd);
		if (err)
			goto out;
	}
	err = txn_steer(t, req, &policy, had_old ? &old : NULL, &old_info);
	if (err)
		goto out;
	guard_dir(dir, sizeof(dir), id);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = report(-errno, "create", dir);
		goto out;
	}
	err = attach_cgroup_links(t, skel, cg);
	if (!err && policy.mode == VG_MODE_TUNNEL)
		err = attach_tc_links(t, &progs, &policy, req->netns_fd);
	if (err)
		rmdir(dir); /* only if this attach made it and left nothing in it */
out:
	vpnguard_bpf__destroy(skel);
	return err;
}

int vg_attach(const struct vg_attach_req *reqs, int n)
{
	struct txn t = { 0 };
	int err = ensure_root(&t);

	for (int r = 0; r < n && !err; r++)
		for (int i = 0; i < reqs[r].n_cgroups && !err; i++)
			err = attach_one(&t, &reqs[r], &reqs[r].cgroups[i]);
	if (err)
		txn_rollback(&t);
	/* Links a re-attached guard had in another namespace, or in tunnel mode. */
	for (int r = 0; r < n && !err; r++)
		for (int i = 0; i < reqs[r].n_cgroups; i++)
			prune_tc_links(reqs[r].cgroups[i].id, &reqs[r].policy,
				       reqs[r].policy.mode == VG_MODE_TUNNEL ? reqs[r].netns_fd : -1);
	for (int i = 0; i < t.n_steers && !err; i++)
		steer_retire(&t.steers[i]);
	txn_free(&t);
	return err;
}

int vg_state_write(__u64 id, const struct vg_state *st)
{
	int fd = vg_map_open("vg_state");
	int err;

	if (fd < 0)
		return fd;
	/* BPF_EXIST: a guard detached meanwhile is not brought back half-made. */
	err = bpf_map_update_elem(fd, &id, st, BPF_EXIST) ? -errno : 0;
	close(fd);
	return err;
}

int vg_guard_refresh(__u64 id, int netns_fd)
{
	struct guard_progs progs = { .id = id };
	struct vg_guard_info info;
	struct vg_policy policy;
	int map_fd = vg_map_open("vg_policy"), tundev_fd;
	int err;

	if (map_fd < 0)
		return map_fd;
	err = bpf_map_lookup_elem(map_fd, &id, &policy) ? -errno : 0;
	close(map_fd);
	if (err || policy.mode != VG_MODE_TUNNEL)
		return err == -ENOENT ? 0 : err;
	map_fd = vg_map_open("vg_guards");
	if (map_fd < 0)
		return map_fd;
	err = bpf_map_lookup_elem(map_fd, &id, &info) ? -errno : 0;
	close(map_fd);
	if (err)
		return err == -ENOENT ? 0 : err;
	info.cgroup[sizeof(info.cgroup) - 1] = 0;
	progs.level = vg_cgroup_level(info.cgroup);
	/* The tunnel's facts first: they are what the programs are waiting for. */
	map_fd = vg_map_open("vg_tunnels");
	tundev_fd = vg_map_open("vg_tundev");
	err = map_fd < 0 ? map_fd : tundev_fd < 0 ? tundev_fd : 0;
	if (!err)
		err = write_tunnel_facts(NULL, map_fd, tundev_fd, &policy, netns_fd);
	if (map_fd >= 0)
		close(map_fd);
	if (tundev_fd >= 0)
		close(tundev_fd);
	if (!err)
		err = steer_guard(netns_fd, &policy, NULL);
	if (!err)
		err = attach_tc_links(NULL, &progs, &policy, netns_fd);
	if (!err)
		prune_tc_links(id, &policy, netns_fd);
	vpnguard_bpf__destroy(progs.skel);
	return err;
}

/* Unlinks a guard's pins (its programs detach) and rmdirs its directory. */
static int remove_guard_dir(const char *dir)
{
	char path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d = opendir(dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) && !err)
			err = report(-errno, "unpin", path);
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = report(-errno, "remove", dir);
	return err;
}

static void delete_guard_entries(__u64 id)
{
	static const char *const by_id[] = { "vg_policy", "vg_state", "vg_guards" };
	static const char *const by_reason[] = { "vg_counters", "vg_ratelimit" };

	for (size_t i = 0; i < sizeof(by_id) / sizeof(by_id[0]); i++) {
		int fd = vg_map_open(by_id[i]);

		if (fd >= 0) {
			bpf_map_delete_elem(fd, &id);
			close(fd);
		}
	}
	for (size_t i = 0; i < sizeof(by_reason) / sizeof(by_reason[0]); i++) {
		int fd = vg_map_open(by_reason[i]);

		if (fd < 0)
			continue;
		for (__u32 r = 0; r < VG_R_MAX; r++) {
			struct vg_counter_key key = { .cgroup_id = id, .reason = r };

			bpf_map_delete_elem(fd, &key);
		}
		close(fd);
	}
}

static int count_guards(void)
{
	int fd = vg_map_open("vg_policy");
	__u64 key, next;
	int n = 0;

	if (fd < 0)
		return 0;
	for (void *prev = NULL; !bpf_map_get_next_key(fd, prev, &next); prev = &key) {
		key = next;
		n++;
	}
	close(fd);
	return n;
}

/* Tunnel entries no guard's policy names any more. */
static void prune_tunnel_entries(void)
{
	int tfd = vg_map_open("vg_tunnels"), pfd = vg_map_open("vg_policy");
	struct vg_tunnel_key key, next, stale[VG_MAX_GUARDS];
	int n_stale = 0;

	if (tfd < 0 || pfd < 0)
		goto out;
	for (void *prev = NULL; !bpf_map_get_next_key(tfd, prev, &next); prev = &key) {
		__u64 id, nid;
		bool used = false;

		key = next;
		for (void *pp = NULL; !used && !bpf_map_get_next_key(pfd, pp, &nid); pp = &id) {
			struct vg_policy p;

			id = nid;
			used = !bpf_map_lookup_elem(pfd, &id, &p) &&
			       p.netns_cookie == key.netns_cookie &&
			       !strncmp(p.tunnel, key.ifname, VG_IFNAMSIZ);
		}
		if (!used && n_stale < VG_MAX_GUARDS)
			stale[n_stale++] = key;
	}
	for (int i = 0; i < n_stale; i++) {
		struct vg_tunnel t;
		int dfd = vg_map_open("vg_tundev");

		if (dfd >= 0 && !bpf_map_lookup_elem(tfd, &stale[i], &t))
			bpf_map_delete_elem(dfd, &t.slot);
		if (dfd >= 0)
			close(dfd);
		bpf_map_delete_elem(tfd, &stale[i]);
	}
out:
	if (tfd >= 0)
		close(tfd);
	if (pfd >= 0)
		close(pfd);
}

static void remove_root_if_empty(void)
{
	char path[256];

	if (count_guards())
		return;
	for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
		snprintf(path, sizeof(path), VG_PIN_ROOT "/%s", map_names[i]);
		unlink(path);
	}
	rmdir(VG_PIN_ROOT);
}

/* Takes a guard's rules and routes out of its namespace, while that namespace exists. */
static void unsteer_guard(__u64 id)
{
	int pfd = vg_map_open("vg_policy"), gfd = vg_map_open("vg_guards"), nfd, err;
	struct vg_guard_info info;
	struct vg_policy p;

	if (pfd >= 0 && gfd >= 0 && !bpf_map_lookup_elem(pfd, &id, &p) &&
	    !bpf_map_lookup_elem(gfd, &id, &info) && p.mode == VG_MODE_TUNNEL && p.fwmark) {
		nfd = guard_netns_open(&info, p.netns_cookie);
		/* A namespace that is gone took its rules with it. */
		if (nfd >= 0 && (err = vg_steer_remove(nfd, p.fwmark, p.route_table)))
			fprintf(stderr, "vpnguard-bpf: remove the routing rules of fwmark 0x%x (table %u): %s\n",
				p.fwmark, p.route_table, strerror(-err));
		if (nfd >= 0)
			close(nfd);
	}
	if (pfd >= 0)
		close(pfd);
	if (gfd >= 0)
		close(gfd);
}

/* Everything of one guard: its links (the programs leave the cgroup), steering, map entries. */
static int remove_guard(__u64 id)
{
	char dir[PATH_MAX];
	int err;

	guard_dir(dir, sizeof(dir), id);
	err = remove_guard_dir(dir);
	unsteer_guard(id);
	delete_guard_entries(id);
	return err;
}

int vg_detach(const __u64 *ids, int n)
{
	int err = 0;

	if (access(VG_PIN_ROOT, F_OK))
		return 0;
	if (n == 0) {
		DIR *d = opendir(VG_PIN_ROOT);
		struct dirent *de;

		if (!d)
			return report(-errno, "open", VG_PIN_ROOT);
		/* Only numeric directories are guards; anything else is not ours to remove. */
		while ((de = readdir(d))) {
			char *end;
			__u64 id = strtoull(de->d_name, &end, 10);

			if (!de->d_name[0] || *end || de->d_name[0] == '.')
				continue;
			err = remove_guard(id) ?: err;
		}
		closedir(d);
		/* Entries whose links are already gone (a guard half-removed by hand). */
		int fd = vg_map_open("vg_policy");
		__u64 key;

		while (fd >= 0 && !bpf_map_get_next_key(fd, NULL, &key))
			remove_guard(key);
		if (fd >= 0)
			close(fd);
	}
	for (int i = 0; i < n; i++)
		err = remove_guard(ids[i]) ?: err;
	prune_tunnel_entries();
	remove_root_if_empty();
	if (!access(VG_PIN_ROOT, F_OK) && !count_guards())
		fprintf(stderr, "vpnguard-bpf: %s still holds files vpnguard did not make; left in place\n",
			VG_PIN_ROOT);
	return err;
}
