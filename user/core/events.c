// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "event_fmt.h"
#include "clock.h"
#include "events.h"
#include "pidfile.h"
#include "loader.h"
#include "error.h"

struct vg_event_reader {
	struct ring_buffer *rb;
	int guards_fd;
	long long boot_to_real;
	vg_record_fn fn;
	void *ctx;
};

long long vg_boot_to_real_ns(void)
{
	return vg_real_ns() - (int64_t)vg_boot_ns();
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct vg_event_reader *r = ctx;
	const struct vg_event *e = data;
	struct vg_guard_info info;
	struct json_object *rec;
	int ret;

	if (size < sizeof(*e))
		return 0;
	bool known = r->guards_fd >= 0 && !bpf_map_lookup_elem(r->guards_fd, &e->guard_cgroup, &info);
	if (known)
		info.cgroup[sizeof(info.cgroup) - 1] = 0;
	rec = vg_event_to_json(e, r->boot_to_real, known ? info.cgroup : NULL);
	ret = r->fn(rec, r->ctx);
	json_object_put(rec);
	return ret;
}

struct vg_event_reader *vg_event_reader_open(vg_record_fn fn, void *ctx)
{
	struct vg_event_reader *r = calloc(1, sizeof(*r));
	int fd = vg_map_open(VG_MAP_EVENTS);

	if (!r || fd < 0) {
		free(r);
		errno = fd < 0 ? -fd : ENOMEM;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	r->fn = fn;
	r->ctx = ctx;
	r->boot_to_real = vg_boot_to_real_ns();
	r->guards_fd = vg_map_open(VG_MAP_GUARDS);
	r->rb = ring_buffer__new(fd, on_sample, r, NULL);
	close(fd); /* the ring buffer keeps its own mapping */
	if (!r->rb) {
		vg_event_reader_close(r);
		return NULL;
	}
	return r;
}

int vg_event_reader_fd(struct vg_event_reader *r)
{
	return ring_buffer__epoll_fd(r->rb);
}

int vg_event_reader_drain(struct vg_event_reader *r)
{
	return ring_buffer__consume(r->rb);
}

int vg_event_reader_poll(struct vg_event_reader *r, int timeout_ms)
{
	return ring_buffer__poll(r->rb, timeout_ms);
}

void vg_event_reader_close(struct vg_event_reader *r)
{
	if (!r)
		return;
	ring_buffer__free(r->rb);
	if (r->guards_fd >= 0)
		close(r->guards_fd);
	free(r);
}

char *vg_agent_log_path(void)
{
	char *path = NULL;

	vg_pidfile_holder(&path);
	return path;
}

pid_t vg_agent_pid(void)
{
	return vg_pidfile_holder(NULL);
}
