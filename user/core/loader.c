// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "clock.h"
#include "loader.h"
#include "migrate.h"
#include "netns.h"
#include "steering.h"
#include "tunnels.h"
#include "txn.h"
#include "vpnguard.skel.h"
#include "error.h"

_Static_assert(offsetof(struct vpnguard_bpf__rodata, guard_cgroup_id) == VG_RODATA_GUARD_ID_OFF &&
	       offsetof(struct vpnguard_bpf__rodata, guard_abi) == VG_RODATA_ABI_OFF,
	       "attach.c finds the guard's id and layout where the programs keep them");

const char *const vg_map_names[] = {
	"vg_policy", "vg_state", "vg_guards", "vg_tunnels", "vg_counters",
	"vg_ratelimit", "vg_events", "vg_tundev", "vg_abi",
};
const int vg_n_map_names = sizeof(vg_map_names) / sizeof(vg_map_names[0]);

/* libbpf's warnings are the real cause of a failed load; its debug chatter is on request. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("VPNGUARD_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* The map layout of the pins there are: 0 when there are none; 1 for the first release's. */
static int pins_abi(void)
{
	struct vg_abi abi = { 0 };
	__u32 zero = 0;
	int fd = vg_map_open(VG_MAP_ABI);

	if (fd >= 0) {
		bpf_map_lookup_elem(fd, &zero, &abi);
		close(fd);
		return abi.version ?: VG_ABI_VERSION; /* 0: made by an attach that has not written it yet */
	}
	fd = vg_map_open(VG_MAP_POLICY);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int check_abi(void)
{
	int abi = pins_abi();

	if (!abi || abi == VG_ABI_VERSION)
		return 0;
	if (abi == 1)
		return vg_migrate_abi1();
	return vg_error(0, "the pins in %s were made by a vpnguard-bpf whose maps have layout %d; "
			"this one has layout %d and cannot reuse them: detach every guard with the "
			"version that made them, then attach with this one", vg_pin_root(), abi,
			VG_ABI_VERSION) ?: -EPROTO;
}

/* Which programs these are: FNV-1a of the BPF object built into this binary, and the mark they set. */
static __u64 build_stamp(__u32 fwmark)
{
	size_t n;
	const unsigned char *p = vpnguard_bpf__elf_bytes(&n);
	__u64 h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((fwmark >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
	return h;
}

static struct vpnguard_bpf *guard_load(__u64 id, __u32 level, __u32 fwmark)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = vg_pin_root());
	struct vg_abi abi = { .version = VG_ABI_VERSION };
	char tundev[PATH_MAX];
	struct vpnguard_bpf *skel;
	__u32 zero = 0;
	int err, pin_fd, ncpu;

	libbpf_set_print(libbpf_print);
	skel = vpnguard_bpf__open_opts(&opts);
	if (!skel) {
		vg_error(-errno, "open BPF object vpnguard");
		return NULL;
	}
	skel->rodata->guard_cgroup_id = id;
	skel->rodata->guard_cgroup_level = level;
	skel->rodata->guard_fwmark = fwmark;
	ncpu = libbpf_num_possible_cpus();
	err = ncpu < 0 ? ncpu : bpf_map__set_max_entries(skel->maps.vg_facts, ncpu);
	if (err) {
		vg_error(err, "size map vg_facts for the possible CPUs");
		vpnguard_bpf__destroy(skel);
		return NULL;
	}
	vg_pin_path(tundev, sizeof(tundev), "vg_tundev");
	pin_fd = bpf_obj_get(tundev);
	err = pin_fd >= 0 ? bpf_map__reuse_fd(skel->maps.vg_tundev, pin_fd) : 0;
	if (pin_fd >= 0)
		close(pin_fd);
	if (!err && (err = vpnguard_bpf__load(skel)))
		vg_error(err, "load BPF programs (VPNGUARD_DEBUG=1 shows the verifier log) of %s",
		       "vpnguard.bpf.o");
	else if (!err && pin_fd < 0 && (err = bpf_map__pin(skel->maps.vg_tundev, tundev)))
		vg_error(err, "pin map %s", tundev);
	else if (!err && bpf_map_update_elem(bpf_map__fd(skel->maps.vg_abi), &zero, &abi, BPF_ANY))
		err = vg_error(-errno, "write map vg_abi");
	if (err) {
		vpnguard_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* A guard's programs, loaded only once an attachment needs them (loading verifies them all). */
struct guard_progs {
	__u64 id;
	__u32 level, fwmark;
	struct vpnguard_bpf *skel;
};

static struct vpnguard_bpf *guard_progs_get(struct guard_progs *g)
{
	if (!g->skel)
		g->skel = guard_load(g->id, g->level, g->fwmark);
	return g->skel;
}

static void guard_pin(char *buf, size_t len, __u64 id, const char *name)
{
	snprintf(buf, len, "%s/%" PRIu64 "/%s", vg_pin_root(), (uint64_t)id, name);
}

/* Does the cgroup hold every one of the guard's programs? */
static bool cgroup_has_guard(int cg_fd, __u64 id)
{
	for (int i = 0; i < VG_N_CGROUP_HOOKS; i++) {
		int fd = vg_attached_prog(cg_fd, vg_cgroup_hooks[i], id);

		if (fd < 0)
			return false;
		close(fd);
	}
	return true;
}

/* The cgroup programs, each in place of the guard's older one: no moment without. */
static int attach_cgroup_progs(struct txn *t, struct vpnguard_bpf *skel, const struct vg_cgroup *cg)
{
	struct bpf_program *progs[VG_N_CGROUP_HOOKS] = {
		skel->progs.vg_egress, skel->progs.vg_sock_create, skel->progs.vg_setsockopt,
		skel->progs.vg_connect4, skel->progs.vg_connect6,
		skel->progs.vg_sendmsg4, skel->progs.vg_sendmsg6,
	};
	char path[PATH_MAX];
	int cg_fd, err = 0;

	cg_fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return vg_error(-errno, "open cgroup %s", cg->path);
	for (int i = 0; i < VG_N_CGROUP_HOOKS && !err; i++) {
		int fd = bpf_program__fd(progs[i]);

		if ((err = txn_attach(t, -1, cg_fd, vg_cgroup_hooks[i], fd, cg->id))) {
			vg_error(err, "attach program to cgroup %s", cg->path);
			break;
		}
		guard_pin(path, sizeof(path), cg->id, bpf_program__name(progs[i]) + strlen("vg_"));
		if ((err = txn_pin(t, fd, path)))
			vg_error(err, "pin program %s", path);
	}
	close(cg_fd);
	return err;
}

struct attached_req {
	__u64 id;
	int ifindex;
	int fd;
};

static int tc_attached_here(void *arg)
{
	struct attached_req *req = arg;

	req->fd = vg_attached_prog(req->ifindex, VG_BPF_TCX_EGRESS, req->id);
	return 0;
}

/*
 * The tc program on every interface of the tunnel's namespace but lo and the
 * tunnel; renew: also where the guard has an older one (new code).
 */
static int attach_tc_progs(struct txn *t, struct guard_progs *g, const struct vg_policy *p,
			   int netns_fd, bool renew)
{
	struct vg_link links[VG_MAX_LINKS];
	int n = vg_netns_links(netns_fd, links, VG_MAX_LINKS), err = 0;
	bool pinned = false;
	char path[PATH_MAX];

	if (n < 0)
		return vg_error(n, "list interfaces of the tunnel's namespace for guard %s", p->tunnel);
	for (int i = 0; i < n && !err; i++) {
		struct attached_req have = { g->id, links[i].ifindex, -1 };
		int fd;

		if (links[i].ifindex == 1 || !strcmp(links[i].name, p->tunnel))
			continue;
		vg_netns_run(netns_fd, tc_attached_here, &have);
		if (have.fd >= 0)
			close(have.fd);
		if (have.fd >= 0 && !renew)
			continue;
		if (!guard_progs_get(g))
			return -ENOEXEC;
		fd = bpf_program__fd(g->skel->progs.vg_tc_egress);
		if ((err = txn_attach(t, netns_fd, links[i].ifindex, VG_BPF_TCX_EGRESS, fd, g->id)))
			vg_error(err, "attach tc egress program to interface %s", links[i].name);
		guard_pin(path, sizeof(path), g->id, "tc_egress");
		if (!err && !pinned && !(err = txn_pin(t, fd, path)))
			pinned = true;
	}
	return err;
}

static int tc_detach_here(void *arg)
{
	struct attached_req *req = arg;

	return vg_detach_guard(req->ifindex, VG_BPF_TCX_EGRESS, req->id);
}

int vg_tc_detach_guard(int netns_fd, __u64 id)
{
	struct vg_link links[VG_MAX_LINKS];
	int n = vg_netns_links(netns_fd, links, VG_MAX_LINKS), err = 0;

	for (int i = 0; i < n; i++) {
		struct attached_req req = { id, links[i].ifindex, -1 };
		int r = vg_netns_run(netns_fd, tc_detach_here, &req);

		if (r && !err)
			err = vg_error(r, "detach tc egress program from %s", links[i].name);
	}
	return n < 0 ? vg_error(n, "list interfaces to take the guard's tc programs off") : err;
}

/* A re-attach that leaves a namespace takes the guard's tc programs out of it. */
struct tc_retire {
	__u64 id;
	struct vg_policy old;
	struct vg_guard_info old_info;
	bool tunnel;                /* the new policy's mode is still tunnel */
};

static void tc_retire_commit(void *arg)
{
	struct tc_retire *r = arg;
	int fd = vg_guard_netns_open(&r->old_info, r->old.netns_cookie);
	char path[PATH_MAX];

	if (fd >= 0) {
		vg_tc_detach_guard(fd, r->id);
		close(fd);
	}
	/* Out of tunnel mode the guard has no tc program at all; in a new namespace it has its own pin. */
	if (!r->tunnel) {
		guard_pin(path, sizeof(path), r->id, "tc_egress");
		unlink(path);
	}
}

static void nothing(void *arg)
{
	(void)arg;
}

static int retire_old_tc(struct txn *t, __u64 id, const struct vg_policy *p,
			 const struct vg_policy *old, const struct vg_guard_info *old_info)
{
	struct tc_retire *r;

	if (old->mode != VG_MODE_TUNNEL ||
	    (p->mode == VG_MODE_TUNNEL && p->netns_cookie == old->netns_cookie))
		return 0;
	if (!(r = malloc(sizeof(*r))))
		return -ENOMEM;
	*r = (struct tc_retire){ id, *old, *old_info, p->mode == VG_MODE_TUNNEL };
	return txn_push(t, nothing, tc_retire_commit, NULL, r);
}

static void root_undo(void *arg)
{
	(void)arg;
	vg_remove_root_if_empty();
}

static int ensure_root(struct txn *t)
{
	int err = vg_bpffs_ensure();

	if (err)
		return err;
	if (!mkdir(vg_pin_root(), 0700))
		return txn_push(t, root_undo, NULL, NULL, NULL);
	return errno == EEXIST ? 0 : vg_error(-errno, "create %s", vg_pin_root());
}

static void dir_undo(void *arg)
{
	rmdir(arg); /* only if this attach left nothing in it */
}

bool vg_guard_paths_fit(const char *cgroup_rel, const char *netns_path)
{
	struct vg_guard_info info;

	return strlen(cgroup_rel) < sizeof(info.cgroup) &&
	       (!netns_path || strlen(netns_path) < sizeof(info.netns));
}

static int attach_one(struct txn *t, const struct vg_attach_req *req, const struct vg_cgroup *cg,
		      bool *replaced)
{
	struct vg_policy policy = req->policy, old;
	struct vg_guard_info info = { 0 }, old_info = { 0 };
	struct guard_progs progs = { cg->id, cg->level, 0, NULL };
	int err = 0, cg_fd, policy_fd = vg_map_open(VG_MAP_POLICY);
	struct vpnguard_bpf *skel;
	struct vg_state old_state;
	char dir[PATH_MAX];
	__u64 id = cg->id;
	bool had_old, renew;

	/* Both paths fit: vg_guard_paths_fit, checked by the caller. */
	memcpy(info.cgroup, cg->rel, strlen(cg->rel));
	if (req->netns_path)
		memcpy(info.netns, req->netns_path, strlen(req->netns_path));
	/* The mark first: the programs are made for it. */
	had_old = policy_fd >= 0 && !bpf_map_lookup_elem(policy_fd, &id, &old);
	if (had_old && vg_map_read(VG_MAP_GUARDS, &id, &old_info))
		memset(&old_info, 0, sizeof(old_info));
	/* No namespace (its tunnel's is gone): nothing to steer; the guard denies every socket by rule 3. */
	if (policy.mode == VG_MODE_TUNNEL && req->netns_fd < 0)
		policy.fwmark = policy.route_table = 0;
	else
		err = vg_steering_choose(policy_fd, id, req->netns_fd, had_old ? &old : NULL, &policy);
	if (policy_fd >= 0)
		close(policy_fd);
	if (err)
		return err;
	progs.fwmark = policy.fwmark;
	info.build = build_stamp(policy.fwmark);
	/* Its programs may stay, and with them what each CPU kept of its policy, state and tunnel. */
	if (had_old)
		*replaced = true;
	skel = guard_progs_get(&progs);
	if (!skel)
		return -ENOEXEC;
	/* Maps before programs: a program never runs without its policy. */
	err = txn_map_update(t, bpf_map__fd(skel->maps.vg_policy), &id, sizeof(id), &policy,
			     sizeof(policy));
	if (!err && !(req->keep_state &&
		      !bpf_map_lookup_elem(bpf_map__fd(skel->maps.vg_state), &id, &old_state)))
		err = txn_map_update(t, bpf_map__fd(skel->maps.vg_state), &id, sizeof(id),
				     &req->state, sizeof(req->state));
	if (!err)
		err = txn_map_update(t, bpf_map__fd(skel->maps.vg_guards), &id, sizeof(id),
				     &info, sizeof(info));
	if (err) {
		vg_error(err, "write maps for cgroup %s", cg->path);
		goto out;
	}
	if (policy.mode == VG_MODE_TUNNEL && req->netns_fd >= 0 &&
	    (err = vg_tunnel_maps_write(t, bpf_map__fd(skel->maps.vg_tunnels),
					bpf_map__fd(skel->maps.vg_tundev), &policy, req->netns_fd)))
		goto out;
	if ((err = vg_steering_txn(t, req->netns_fd, &policy, had_old ? &old : NULL, &old_info)))
		goto out;
	if (had_old && (err = retire_old_tc(t, id, &policy, &old, &old_info)))
		goto out;
	snprintf(dir, sizeof(dir), "%s/%" PRIu64, vg_pin_root(), (uint64_t)id);
	if (!mkdir(dir, 0700)) {
		if ((err = txn_push(t, dir_undo, NULL, NULL, strdup(dir))))
			goto out;
	} else if (errno != EEXIST) {
		err = vg_error(-errno, "create %s", dir);
		goto out;
	}
	/* Programs of this build already in place stay: their per-socket state with them. */
	renew = old_info.build != info.build;
	cg_fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (renew || cg_fd < 0 || !cgroup_has_guard(cg_fd, id))
		err = attach_cgroup_progs(t, skel, cg);
	if (cg_fd >= 0)
		close(cg_fd);
	if (!err && policy.mode == VG_MODE_TUNNEL && req->netns_fd >= 0)
		err = attach_tc_progs(t, &progs, &policy, req->netns_fd, renew);
out:
	vpnguard_bpf__destroy(progs.skel);
	return err;
}

/*
 * Programs that stay keep what each CPU read of a guard's policy, state and
 * tunnel until VG_FACTS_TTL_NS past the read on the kernel's coarse clock
 * (vpnguard.h, "Facts read again"): an attach that wrote over a guard, or put
 * an old one back, returns once that clock, read after the last write, has
 * moved that far, so no CPU can judge by what it replaced. The coarse clock
 * moves at each tick, and later where a tick is late (a VM's vCPU that waits
 * for its host): it is watched, not assumed.
 */
static void outwait_kept_facts(void)
{
	vg_mono_coarse_outwait(VG_FACTS_TTL_NS);
}

int vg_attach_requests(const struct vg_attach_req *reqs, int n)
{
	struct txn t = { 0 };
	int err = ensure_root(&t);
	bool replaced = false;

	for (int r = 0; r < n && !err; r++)
		for (int i = 0; i < reqs[r].n_cgroups && !err; i++)
			err = attach_one(&t, &reqs[r], &reqs[r].cgroups[i], &replaced);
	if (err)
		txn_rollback(&t);
	else
		txn_commit(&t);
	if (replaced)
		outwait_kept_facts();
	return err;
}

int vg_attach(const struct vg_attach_req *reqs, int n)
{
	return check_abi() ?: vg_attach_requests(reqs, n);
}

int vg_guard_refresh(__u64 id, int netns_fd)
{
	struct guard_progs progs = { .id = id };
	struct vg_guard_info info;
	struct vg_policy policy;
	struct txn t = { 0 };
	int tunnels_fd, tundev_fd, err;

	err = vg_map_read(VG_MAP_POLICY, &id, &policy);
	if (!err && policy.mode == VG_MODE_TUNNEL)
		err = vg_map_read(VG_MAP_GUARDS, &id, &info);
	if (err || policy.mode != VG_MODE_TUNNEL)
		return err == -ENOENT ? 0 : err;
	info.cgroup[sizeof(info.cgroup) - 1] = 0;
	progs.level = vg_cgroup_level(info.cgroup);
	progs.fwmark = policy.fwmark;
	/* The tunnel's facts first: they are what the programs are waiting for. */
	tunnels_fd = vg_map_open(VG_MAP_TUNNELS);
	tundev_fd = vg_map_open(VG_MAP_TUNDEV);
	err = tunnels_fd < 0 ? tunnels_fd : tundev_fd < 0 ? tundev_fd : 0;
	if (!err)
		err = vg_tunnel_maps_write(NULL, tunnels_fd, tundev_fd, &policy, netns_fd);
	if (tunnels_fd >= 0)
		close(tunnels_fd);
	if (tundev_fd >= 0)
		close(tundev_fd);
	if (!err)
		err = vg_steering_apply(netns_fd, &policy, NULL);
	/* New interfaces get the tc program; what did attach is kept, whatever failed after. */
	if (!err)
		err = attach_tc_progs(&t, &progs, &policy, netns_fd, false);
	txn_commit(&t);
	vpnguard_bpf__destroy(progs.skel);
	return err;
}
