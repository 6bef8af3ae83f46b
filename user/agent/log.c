// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "event_fmt.h"
#include "clock.h"
#include "log.h"

static int open_path(const char *path)
{
	char dir[PATH_MAX];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	mkdir(dirname(dir), 0750);
	/* root appends here: never to whatever a symlink in its place points at. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

int vg_log_open(struct vg_log *l, const char *path)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->fd = open_path(path);
	if (l->fd < 0)
		fprintf(stderr, "vpnguard-bpf: open log %s: %s\n", path,
			l->fd == -ELOOP ? "a symlink (refused: the log is root's)" : strerror(-l->fd));
	return l->fd < 0 ? l->fd : 0;
}

void vg_log_reopen(struct vg_log *l)
{
	int fd = open_path(l->path);

	if (fd < 0) {
		fprintf(stderr, "vpnguard-bpf: agent: reopen log %s: %s (still writing the old one)\n",
			l->path, strerror(-fd));
		return;
	}
	close(l->fd);
	l->fd = fd;
}

void vg_log_close(struct vg_log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

struct json_object *vg_log_record(enum vg_record kind)
{
	struct json_object *rec = json_object_new_object();
	char when[64];

	vg_format_time(vg_real_ns(), when, sizeof(when));
	json_object_object_add(rec, "time", json_object_new_string(when));
	json_object_object_add(rec, "event", json_object_new_string(vg_record_name(kind)));
	return rec;
}

/* One whole line or nothing: what a short write left is cut off again. */
static int write_line(int fd, const char *s)
{
	size_t len = strlen(s);
	struct stat st;
	ssize_t n;
	char buf[16384];

	if (len + 1 > sizeof(buf))
		return -EMSGSIZE;
	memcpy(buf, s, len);
	buf[len] = '\n';
	if (fstat(fd, &st))
		return -errno;
	n = write(fd, buf, len + 1);
	if (n == (ssize_t)len + 1)
		return 0;
	n = n < 0 ? -errno : -ENOSPC;
	/* If even this fails, the next reader skips a line it cannot parse. */
	(void)!ftruncate(fd, st.st_size);
	return (int)n;
}

void vg_log_write(struct vg_log *l, struct json_object *rec)
{
	int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, err;

	if (l->lost) {
		struct json_object *gap = vg_log_record(VG_REC_LOG);

		json_object_object_add(gap, "lost", json_object_new_uint64(l->lost));
		err = write_line(l->fd, json_object_to_json_string_ext(gap, flags));
		json_object_put(gap);
		if (err) {
			l->lost++;
			return;
		}
		fprintf(stderr, "vpnguard-bpf: agent: log %s: writing again (%llu records lost)\n",
			l->path, l->lost);
		l->lost = 0;
	}
	err = write_line(l->fd, json_object_to_json_string_ext(rec, flags));
	if (err && !l->lost++)
		fprintf(stderr, "vpnguard-bpf: agent: log %s: %s (records are counted until it "
			"can write again)\n", l->path, strerror(-err));
}
