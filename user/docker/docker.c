// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "docker.h"
#include "http.h"

/*
 * A fixed API version: the answers keep the shape this client reads. 1.41
 * is Debian 12's engine (20.10); later engines still serve it.
 */
#define API "http://docker/v1.41"
#define CONNECT_TIMEOUT_MS 2000L
#define REQUEST_TIMEOUT_MS 10000L
/* A restart or stop waits for the container to end: the engine's own 10 s, then SIGKILL. */
#define ACTION_TIMEOUT_MS 60000L
#define BODY_MAX (1 << 20)

/* Starts and deaths of containers; the filter JSON, URL-encoded. */
#define EVENTS_PATH "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C" \
		    "%22event%22%3A%5B%22start%22%2C%22die%22%5D%7D"

int vg_docker_socket(const char *flag, char *sock, size_t len, char *err, size_t errlen)
{
	const char *env = getenv("DOCKER_HOST");
	const char *host = vg_docker_host_pick(flag, env);
	int r = vg_docker_host_socket(host, sock, len);

	if (r)
		snprintf(err, errlen, "docker: %s %s: %s", flag ? "--docker-host" : "DOCKER_HOST", host,
			 r == -EPROTONOSUPPORT ? "only unix:// sockets are supported (--docker-host unix:///PATH)" :
			 "not unix:///PATH");
	return r;
}

struct body {
	char *buf;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	char *p;

	if (b->len + add > BODY_MAX || !(p = realloc(b->buf, b->len + add + 1)))
		return 0;
	memcpy(p + b->len, data, add);
	b->buf = p;
	b->len += add;
	b->buf[b->len] = 0;
	return add;
}

/*
 * One request on the socket: a GET, or a POST without a body when post.
 * Returns 0 with the HTTP status in *status, -ECANCELED when cb refused
 * data, -EINTR when *stop was set (stop may be NULL), or -ENOTCONN with the
 * cause in err.
 */
static int request(const char *sock, bool post, const char *path, long timeout_ms, curl_write_callback cb,
		   void *ud, const atomic_bool *stop, long *status, char *err, size_t errlen)
{
	char url[512], why[256];
	const struct vg_curl *cu = vg_curl(why, sizeof(why));
	CURL *c = cu ? cu->easy_init() : NULL;
	CURLcode rc;
	long os_errno = 0;

	if (!c) {
		snprintf(err, errlen, "docker: %s: %s", sock, cu ? "cannot set up libcurl" : why);
		return cu ? -ENOMEM : -EIO;
	}
	snprintf(url, sizeof(url), API "%s", path);
	cu->easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	cu->easy_setopt(c, CURLOPT_URL, url);
	cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, cb);
	cu->easy_setopt(c, CURLOPT_WRITEDATA, ud);
	if (post) {
		cu->easy_setopt(c, CURLOPT_POST, 1L);
		cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
		cu->easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	if (stop) {
		cu->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		cu->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, vg_http_stop_progress);
		cu->easy_setopt(c, CURLOPT_XFERINFODATA, stop);
	}
	rc = cu->easy_perform(c);
	cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	cu->easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	cu->easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	if (rc == CURLE_WRITE_ERROR)
		return -ECANCELED; /* the callback said stop */
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "docker: %s: stopped", sock);
		return -EINTR;
	}
	/* One code for "no engine there", whatever the reason: ENOENT means no such container. */
	snprintf(err, errlen, "docker: %s: %s", sock,
		 os_errno ? strerror((int)os_errno) : cu->easy_strerror(rc));
	return -ENOTCONN;
}

/* A request whose answer is read whole into *b (freed by the caller); -EIO when it is too long. */
static int call(const char *sock, bool post, const char *path, long timeout_ms, const atomic_bool *stop,
		struct body *b, long *status, const char *what, char *err, size_t errlen)
{
	int r = request(sock, post, path, timeout_ms, on_body, b, stop, status, err, errlen);

	if (r == -ECANCELED) {
		snprintf(err, errlen, "docker: %s: answer over %d bytes", what, BODY_MAX);
		r = -EIO;
	}
	return r;
}

int vg_docker_inspect(const char *sock, const char *name, struct vg_docker_container *c,
		      char *err, size_t errlen)
{
	struct body b = { 0 };
	char path[320], what[300], msg[256];
	long status = 0;
	int r;

	if (!vg_docker_name_valid(name)) {
		snprintf(err, errlen, "docker: container '%s': not a container name or id", name);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/containers/%s/json", name);
	snprintf(what, sizeof(what), "container '%s'", name);
	r = call(sock, false, path, REQUEST_TIMEOUT_MS, NULL, &b, &status, what, err, errlen);
	if (!r && status == 404) {
		snprintf(err, errlen, "docker: container '%s': no such container", name);
		r = -ENOENT;
	} else if (!r && status != 200) {
		vg_docker_error_message(b.buf ? b.buf : "", msg, sizeof(msg));
		snprintf(err, errlen, "docker: container '%s': engine answered %ld: %s", name, status, msg);
		r = -EIO;
	} else if (!r && vg_docker_parse_container(b.buf ? b.buf : "", c, msg, sizeof(msg))) {
		snprintf(err, errlen, "docker: container '%s': %s", name, msg);
		r = -EIO;
	}
	free(b.buf);
	return r;
}

int vg_docker_ping(const char *sock, const atomic_bool *stop, char *err, size_t errlen)
{
	struct body b = { 0 };
	long status = 0;
	int r = call(sock, false, "/_ping", REQUEST_TIMEOUT_MS, stop, &b, &status, sock, err, errlen);

	if (!r && status != 200) {
		snprintf(err, errlen, "docker: %s: _ping answered %ld", sock, status);
		r = -EIO;
	}
	free(b.buf);
	return r;
}

int vg_docker_list(const char *sock, struct vg_docker_summary **out, int *n, char *err, size_t errlen)
{
	struct body b = { 0 };
	char msg[256];
	long status = 0;
	int r = call(sock, false, "/containers/json?all=1", REQUEST_TIMEOUT_MS, NULL, &b, &status, "list",
		     err, errlen);

	*out = NULL;
	*n = 0;
	if (!r && status != 200) {
		vg_docker_error_message(b.buf ? b.buf : "", msg, sizeof(msg));
		snprintf(err, errlen, "docker: list of containers: engine answered %ld: %s", status, msg);
		r = -EIO;
	} else if (!r && !(*out = calloc(VG_DOCKER_LIST_MAX, sizeof(**out)))) {
		snprintf(err, errlen, "docker: list of containers: %s", strerror(ENOMEM));
		r = -ENOMEM;
	} else if (!r && vg_docker_parse_list(b.buf ? b.buf : "", *out, VG_DOCKER_LIST_MAX, n, msg, sizeof(msg))) {
		snprintf(err, errlen, "docker: list of containers: %s", msg);
		r = -EIO;
	}
	if (r) {
		free(*out);
		*out = NULL;
	}
	free(b.buf);
	return r;
}

int vg_docker_act(const char *sock, const char *id, const char *action, const atomic_bool *stop,
		  char *err, size_t errlen)
{
	struct body b = { 0 };
	char path[320], what[320], msg[256];
	long status = 0;
	int r;

	if (!vg_docker_name_valid(id)) {
		snprintf(err, errlen, "docker: container '%s': not a container name or id", id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/containers/%s/%s", id, action);
	snprintf(what, sizeof(what), "%s of container %.12s", action, id);
	r = call(sock, true, path, ACTION_TIMEOUT_MS, stop, &b, &status, what, err, errlen);
	/* 304: start or stop of a container that already is; 409: (un)pause of one that already is. */
	if (!r && (status == 304 || status == 409)) {
		r = -EALREADY;
	} else if (!r && status == 404) {
		snprintf(err, errlen, "docker: %s: no such container", what);
		r = -ENOENT;
	} else if (!r && status != 204) {
		vg_docker_error_message(b.buf ? b.buf : "", msg, sizeof(msg));
		snprintf(err, errlen, "docker: %s: engine answered %ld: %s", what, status, msg);
		r = -EIO;
	}
	free(b.buf);
	return r;
}

int vg_docker_resolve(const char *sock, const char *name, struct vg_docker_target *t,
		      char *err, size_t errlen)
{
	struct vg_docker_container again;
	char why[PATH_MAX + 128];
	int r;

	memset(t, 0, sizeof(*t));
	r = vg_docker_inspect(sock, name, &t->c, err, errlen);
	if (r)
		return r;
	if (!t->c.running) {
		snprintf(err, errlen, "docker: container '%s': not running (%s)", name, t->c.status);
		return -ESRCH;
	}
	r = vg_cgroup_of_pid(t->c.pid, &t->cg, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "docker: container '%s': %s", name, why);
		return r;
	}
	if (!strcmp(t->cg.rel, "/")) {
		snprintf(err, errlen, "docker: container '%s': its processes are in the root cgroup v2 "
			 "(the runtime did not place it in cgroup v2); guard its cgroup parent instead", name);
		return -EPERM;
	}
	/*
	 * The process read above was the container's only if the container
	 * still runs the same process now: a PID is not reused while it lives.
	 */
	r = vg_docker_inspect(sock, name, &again, err, errlen);
	if (r)
		return r;
	if (!again.running || again.pid != t->c.pid || strcmp(again.started, t->c.started)) {
		snprintf(err, errlen, "docker: container '%s': restarted while being resolved; try again", name);
		return -EAGAIN;
	}
	snprintf(t->netns, sizeof(t->netns), "/proc/%d/ns/net", t->c.pid);
	return 0;
}

struct stream {
	struct vg_line_buf lines;
	vg_docker_event_fn fn;
	void *ctx;
	int stop;           /* what fn returned to end the stream */
};

static int on_line(const char *line, void *ud)
{
	struct stream *s = ud;
	struct vg_docker_event ev;

	if (vg_docker_parse_event(line, &ev))
		return 0; /* other kinds of events: not ours */
	s->stop = s->fn(&ev, s->ctx);
	return s->stop;
}

static size_t on_events(char *data, size_t size, size_t n, void *ud)
{
	struct stream *s = ud;

	return vg_line_buf_feed(&s->lines, data, size * n, on_line, s) ? 0 : size * n;
}

int vg_docker_events(const char *sock, int64_t since_ns, vg_docker_event_fn fn, void *ctx,
		     const atomic_bool *stop, char *err, size_t errlen)
{
	struct stream *s = calloc(1, sizeof(*s));
	char path[256];
	long status = 0;
	int r;

	if (!s) {
		snprintf(err, errlen, "docker: %s: %s", sock, strerror(ENOMEM));
		return -ENOMEM;
	}
	s->fn = fn;
	s->ctx = ctx;
	if (since_ns > 0)
		snprintf(path, sizeof(path), "%s&since=%lld.%09lld", EVENTS_PATH,
			 (long long)(since_ns / 1000000000), (long long)(since_ns % 1000000000));
	else
		snprintf(path, sizeof(path), "%s", EVENTS_PATH);
	r = request(sock, false, path, 0, on_events, s, stop, &status, err, errlen);
	if (r == -ECANCELED)
		r = s->stop;
	else if (!r && status != 200) {
		snprintf(err, errlen, "docker: %s: events: engine answered %ld", sock, status);
		r = -EIO;
	} else if (!r) {
		snprintf(err, errlen, "docker: %s: events: the engine ended the stream", sock);
		r = -ECONNRESET;
	}
	free(s);
	return r;
}
