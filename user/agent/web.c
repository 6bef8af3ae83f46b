// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's HTTP endpoint (--http): /metrics, /api/v1/status and the status
 * page, read-only. libmicrohttpd runs in the agent's loop (its epoll fd is one
 * sd-event source, its timeouts one timer), never in a thread of its own: each
 * answer is built from memory and the maps in well under a millisecond, and a
 * slow or hostile client costs a connection slot, never the loop's time.
 * Connections are bounded in number, per address, in memory and in idle time.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <microhttpd.h>
#include "agent_state.h"
#include "clock.h"
#include "dl.h"
#include "error.h"
#include "listen.h"
#include "metrics.h"
#include "status.h"
#include "status_html.h"
#include "version.h"

#define WEB_CONNECTIONS 32
#define WEB_PER_ADDRESS 8
#define WEB_IDLE_S 5
#define WEB_MEMORY (32 * 1024)      /* per connection: headers of a GET fit many times */

/* libmicrohttpd, loaded when an endpoint is asked for (lib/dl.h says why). */
static struct {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_run) *run;
	__typeof__(MHD_get_timeout) *get_timeout;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
} mhd;

#define MHD_FN(field) vg_dl_resolve(lib, "MHD_" #field, &mhd.field)

/* 0, or -ELIBACC with the loader's words in err. */
static int load_mhd(char *err, size_t errlen)
{
	static void *lib;

	if (lib)
		return 0;
	lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
	if (lib && MHD_FN(start_daemon) && MHD_FN(stop_daemon) && MHD_FN(get_daemon_info) && MHD_FN(run) &&
	    MHD_FN(get_timeout) && MHD_FN(create_response_from_buffer) && MHD_FN(add_response_header) &&
	    MHD_FN(queue_response) && MHD_FN(destroy_response))
		return 0;
	snprintf(err, errlen, "%s", dlerror());
	if (lib)
		dlclose(lib);
	lib = NULL;
	return -ELIBACC;
}

struct vg_web {
	struct MHD_Daemon *mhd;
	sd_event_source *io, *timer;
	char *where;                    /* --http as given: a reload that keeps it keeps the server */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* What /api/v1/status serves: the maps' view and the agent's. NULL when the maps cannot be read. */
static struct json_object *status_now(struct agent *a)
{
	struct json_object *root, *guards, *agent = json_object_new_object();
	char when[64];

	if (vg_status_json(&root)) {
		json_object_put(agent);
		return NULL;
	}
	json_object_object_add(root, "version", json_object_new_string(VG_VERSION));
	vg_format_time(vg_real_ns(), when, sizeof(when));
	json_object_object_add(root, "now", json_object_new_string(when));
	json_object_object_add(agent, "pid", json_object_new_int(getpid()));
	vg_format_time(a->started_ns, when, sizeof(when));
	json_object_object_add(agent, "started", json_object_new_string(when));
	json_object_object_add(agent, "log", json_object_new_string(a->log.path));
	json_object_object_add(root, "agent", agent);
	json_object_object_get_ex(root, "guards", &guards);
	for (size_t i = 0; i < json_object_array_length(guards); i++)
		history_add_json(a, json_object_array_get_idx(guards, i));
	return root;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *type, const char *body,
			      size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = mhd.create_response_from_buffer(len, (void *)body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	mhd.add_response_header(r, "Content-Type", type);
	mhd.add_response_header(r, "Cache-Control", "no-store");
	mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
	/* The page's own inline script and style, its fetches to this origin, nothing else. */
	mhd.add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
				"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
				"frame-ancestors 'none'");
	ret = mhd.queue_response(c, code, r);
	mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *msg)
{
	return answer(c, code, "text/plain; charset=utf-8", msg, strlen(msg), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct agent *a = cls;
	struct json_object *st;
	enum MHD_Result ret;
	char *body;

	(void)version, (void)upload;
	/* Read-only: nothing is accepted, and a request with a body is answered before it is read. */
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET or HEAD\n");
	if (*upload_size)
		return text(c, MHD_HTTP_CONTENT_TOO_LARGE, "no request body\n");
	*state = NULL;
	if (!strcmp(url, "/"))
		return answer(c, MHD_HTTP_OK, "text/html; charset=utf-8", (const char *)vg_status_html,
			      vg_status_html_len, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") && strcmp(url, "/api/v1/status"))
		return text(c, MHD_HTTP_NOT_FOUND, "not found: /, /metrics, /api/v1/status\n");
	if (!(st = status_now(a)))
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the guard's maps cannot be read (see the agent's log)\n");
	if (!strcmp(url, "/metrics")) {
		body = vg_metrics_text(st, VG_VERSION, (double)vg_real_ns() / 1e9);
		ret = body ? answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, strlen(body),
				    MHD_RESPMEM_MUST_FREE) :
			     text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	} else {
		const char *json = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

		ret = answer(c, MHD_HTTP_OK, "application/json", json, strlen(json), MHD_RESPMEM_MUST_COPY);
	}
	json_object_put(st);
	return ret;
}

/* MHD's next deadline, as a timer of the loop (off when it has none). */
static void arm_timer(struct vg_web *w)
{
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	if (mhd.get_timeout(w->mhd, &ms) != MHD_YES) {
		sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_now(sd_event_source_get_event(w->timer), CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(w->timer, now + ms * 1000);
	sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct vg_web *w = userdata;

	(void)s, (void)fd, (void)revents;
	mhd.run(w->mhd);
	arm_timer(w);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)usec;
	return on_io(s, -1, 0, userdata);
}

/* The listening socket: a Unix one is root's alone (0600), made anew over a stale one. */
static int listen_on(const struct vg_listen *l, struct vg_web *w)
{
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_un *un = (struct sockaddr_un *)&l->addr;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (l->addr.ss_family == AF_UNIX) {
		if (!lstat(un->sun_path, &st) && S_ISSOCK(st.st_mode))
			unlink(un->sun_path);
		snprintf(w->sock_path, sizeof(w->sock_path), "%s", un->sun_path);
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	/* Made 0600 from the start: no moment in which another user could connect. */
	mode_t old = umask(0177);
	int bound = bind(fd, (const struct sockaddr *)&l->addr, l->len);

	umask(old);
	if (bound || listen(fd, 64)) {
		int err = -errno;

		close(fd);
		w->sock_path[0] = 0;
		return err;
	}
	return fd;
}

static void web_free(struct vg_web *w)
{
	if (!w)
		return;
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->timer);
	if (w->mhd)
		mhd.stop_daemon(w->mhd);
	if (w->sock_path[0])
		unlink(w->sock_path);
	free(w->where);
	free(w);
}

void web_stop(struct agent *a)
{
	web_free(a->web);
	a->web = NULL;
}

static int web_start(struct agent *a, const char *where)
{
	struct vg_web *w = calloc(1, sizeof(*w));
	const union MHD_DaemonInfo *info;
	struct vg_listen l;
	char err[PATH_MAX + 128];
	int fd, r;

	if (!w || !(w->where = strdup(where))) {
		free(w);
		return vg_error(-ENOMEM, "agent: --http %s", where);
	}
	if ((r = load_mhd(err, sizeof(err)))) {
		web_free(w);
		return vg_error(r, "agent: --http %s: libmicrohttpd: %s", where, err);
	}
	/* The set was prepared with this address, so it parses. */
	if (vg_listen_parse(where, &l, err, sizeof(err))) {
		web_free(w);
		return vg_error(-EINVAL, "agent: %s", err);
	}
	if ((fd = listen_on(&l, w)) < 0) {
		web_free(w);
		return vg_error(fd, "agent: --http %s: listen", where);
	}
	w->mhd = mhd.start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_request, a,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEB_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)WEB_PER_ADDRESS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_IDLE_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_MEMORY,
				  MHD_OPTION_END);
	if (!w->mhd) {
		close(fd);
		web_free(w);
		return vg_error(-EIO, "agent: --http %s: start the HTTP server", where);
	}
	info = mhd.get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || (r = sd_event_add_io(a->loop, &w->io, info->epoll_fd, EPOLLIN, on_io, w)) < 0 ||
	    (r = sd_event_add_time(a->loop, &w->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, w)) < 0) {
		web_free(w);
		return vg_error(info ? r : -EIO, "agent: --http %s: watch the HTTP server", where);
	}
	a->web = w;
	arm_timer(w);
	fprintf(stderr, "vpnguard-bpf: agent: serving /, /metrics and /api/v1/status on %s\n", where);
	return 0;
}

int web_apply(struct agent *a)
{
	const char *where = a->set->http;

	if (a->web && where && !strcmp(a->web->where, where))
		return 0;
	web_stop(a);
	return where ? web_start(a, where) : 0;
}
