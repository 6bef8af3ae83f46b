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

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_record(struct json_object *rec, void *ctx)
{
	bool json = *(bool *)ctx;
	char line[1024];

	if (json) {
		puts(json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		vg_record_to_line(rec, line, sizeof(line));
		puts(line);
	}
	fflush(stdout);
	return 0;
}

static void print_log_line(const char *line, bool json)
{
	struct json_object *rec;

	if (json) {
		fputs(line, stdout);
		return;
	}
	rec = json_tokener_parse(line);
	if (rec)
		print_record(rec, &json);
	json_object_put(rec);
}

/* Prints the agent's log, then (follow) what is appended, across rotation. */
static int follow_log(const char *path, bool follow, bool json)
{
	char *line = NULL;
	size_t cap = 0;
	struct stat st, now;
	FILE *f = fopen(path, "re");

	if (!f) {
		fprintf(stderr, "vpnguard-bpf: open log %s: %s\n", path, strerror(errno));
		return 1;
	}
	fstat(fileno(f), &st);
	while (!stop) {
		if (getline(&line, &cap, f) > 0) {
			print_log_line(line, json);
			fflush(stdout);
			continue;
		}
		if (!follow)
			break;
		clearerr(f);
		/* Rotated (new inode) or truncated: start over on the file now at path. */
		if (!stat(path, &now) && (now.st_ino != st.st_ino || now.st_size < ftell(f))) {
			FILE *g = fopen(path, "re");

			if (g) {
				fclose(f);
				f = g;
				fstat(fileno(f), &st);
				continue;
			}
		}
		usleep(200 * 1000);
	}
	free(line);
	fclose(f);
	return 0;
}

int vg_cmd_events(bool follow, bool json)
{
	struct sigaction sa = { .sa_handler = on_stop };
	struct vg_event_reader *r;
	char *log = vg_agent_log_path();
	int ret = 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (log) {
		ret = follow_log(log, follow, json);
		free(log);
		return ret;
	}
	r = vg_event_reader_open(print_record, &json);
	if (!r) {
		if (errno == ENOENT)
			fprintf(stderr, "vpnguard-bpf: nothing attached (no %s/vg_events) and no agent running\n",
				VG_PIN_ROOT);
		else
			fprintf(stderr, "vpnguard-bpf: open ring buffer %s/vg_events: %s\n",
				VG_PIN_ROOT, strerror(errno));
		return 1;
	}
	ret = vg_event_reader_drain(r);
	while (follow && !stop && ret >= 0)
		ret = vg_event_reader_poll(r, 500);
	vg_event_reader_close(r);
	if (ret < 0 && ret != -EINTR) {
		fprintf(stderr, "vpnguard-bpf: read ring buffer: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
