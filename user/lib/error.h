/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one error convention: a function returns 0 or a negative errno, and the
 * error is reported once, where the user's words are known, naming the object
 * and the cause (systemd's log_error_errno shape):
 *
 *     return vg_error(err, "attach %s to cgroup %s", prog, path);
 *
 * prints "vpnguard-bpf: attach vg_egress to cgroup /sys/...: Operation not
 * permitted" and returns err. The agent also keeps the last error of its own
 * thread, so a refused reload can put the cause in its log record.
 */
#ifndef VG_ERROR_H
#define VG_ERROR_H

/* err < 0: the message with strerror(-err); err == 0: the message alone. Returns err. */
int vg_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What the calling thread reported last ("" when nothing since vg_error_forget). */
const char *vg_error_last(void);
void vg_error_forget(void);

#endif
