/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where vpnguard keeps its state: the pin root on bpffs and the run directory
 * (agent pidfile, lock). VPNGUARD_PIN_ROOT and VPNGUARD_RUN_DIR move them, so
 * that the tests run beside a vpnguard that guards the machine.
 */
#ifndef VG_PATHS_H
#define VG_PATHS_H

const char *vg_pin_root(void);       /* /sys/fs/bpf/vpnguard */
const char *vg_run_dir(void);        /* /run/vpnguard */
const char *vg_agent_pidfile(void);  /* <run dir>/agent.pid */

/* Mounts bpffs on /sys/fs/bpf when nothing is mounted there. */
int vg_bpffs_ensure(void);

/* <pin root>/name (name may hold a '/'), in a buffer of the caller's. */
const char *vg_pin_path(char *buf, unsigned long len, const char *name);

/*
 * Serialises attach, detach and the agent's reloads (<run dir>/lock): blocks
 * until this process holds it; the kernel drops it when the holder dies.
 * Returns the lock's fd, or -errno (named on stderr).
 */
int vg_lock_take(void);
/* The same lock if no one holds it: its fd, -EWOULDBLOCK (said nowhere) or another -errno. */
int vg_lock_try(void);
void vg_lock_drop(int fd);

#endif
