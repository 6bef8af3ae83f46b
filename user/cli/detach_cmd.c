// SPDX-License-Identifier: GPL-2.0
/* detach: the named guards, or every guard; found by the record when the cgroup is gone. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include "cgroup.h"
#include "commands.h"
#include "loader.h"
#include "pins.h"

/*
 * A guard's cgroup removed: its path no longer resolves, but the guard's
 * record still names it. Detach finds it there and cleans it up.
 */
static int resolve_detach(const struct vg_options *o, __u64 *ids)
{
	static struct vg_cgroup cg;
	char err[PATH_MAX + 256];

	for (int i = 0; i < o->n_cgroups; i++) {
		if (!vg_cgroup_resolve(o->cgroups[i], &cg, err, sizeof(err))) {
			int fd = open(cg.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			ids[i] = cg.id;
			/* Pins gone, programs not: make the pins again so detach finds everything. */
			if (fd >= 0 && !vg_pins_present(cg.id))
				vg_pins_restore(fd, cg.id);
			if (fd >= 0)
				close(fd);
		} else if (vg_guard_find(o->cgroups[i], &ids[i])) {
			fprintf(stderr, "vpnguard-bpf: %s (and no guard records that cgroup)\n", err);
			return EXIT_USAGE;
		}
		for (int j = 0; j < i; j++)
			if (ids[j] == ids[i]) {
				fprintf(stderr, "vpnguard-bpf: --cgroup %s: given twice\n", o->cgroups[i]);
				return EXIT_USAGE;
			}
	}
	return 0;
}

int vg_cmd_detach(const struct vg_options *o)
{
	__u64 ids[VG_MAX_CGROUP_ARGS];
	int rc, lock = vg_lock_take();

	if (lock < 0)
		return EXIT_RUNTIME;
	rc = resolve_detach(o, ids);
	if (!rc && !o->n_cgroups)
		vg_pins_restore_all();
	if (!rc)
		rc = vg_detach(ids, o->n_cgroups) ? EXIT_RUNTIME : EXIT_OK;
	vg_lock_drop(lock);
	return rc;
}
