/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Docker Engine API answers, read: pure (json-c and libc only), so every
 * answer the engine can give is unit-tested without an engine. The socket
 * side is docker.c.
 */
#ifndef VG_DOCKER_JSON_H
#define VG_DOCKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"

/* What vpnguard needs of GET /containers/{name}/json. */
struct vg_docker_container {
	char id[65];
	char name[256];     /* without Docker's leading '/' */
	char status[16];    /* State.Status: running, exited, restarting, ... */
	char started[40];   /* State.StartedAt: tells one run of the container from the next */
	int pid;            /* State.Pid; 0 when not running */
	bool running;       /* State.Running */
	bool paused;        /* State.Paused */
	char health[16];    /* State.Health.Status: healthy, unhealthy, starting; "" without a healthcheck */
	char network_mode[320]; /* HostConfig.NetworkMode: "container:<id>" for a shared namespace */
};

/* One container of GET /containers/json. */
struct vg_docker_summary {
	char id[65];
	char name[256];     /* the first of Names, without its '/' */
	char state[16];     /* running, paused, exited, ... */
	char network_mode[320];
};

/* One line of GET /events: a container started or died. */
struct vg_docker_event {
	char action[32];    /* "start", "die", ... */
	char id[65];
	char name[256];     /* Actor.Attributes.name */
	int64_t time_ns;    /* timeNano */
};

/*
 * The socket path of a Docker host: "unix:///path" gives "/path". Other
 * schemes (tcp://, ssh://) are -EPROTONOSUPPORT, anything else -EINVAL.
 */
int vg_docker_host_socket(const char *host, char *path, size_t len);

/*
 * The Docker host to use: --docker-host when given, else DOCKER_HOST from
 * the environment when it is set, else the default socket.
 */
const char *vg_docker_host_pick(const char *flag, const char *env);

/*
 * Docker's own rule for container names ([a-zA-Z0-9][a-zA-Z0-9_.-]*, also
 * what ids are made of): a name that passes needs no escaping in a URL.
 */
bool vg_docker_name_valid(const char *name);

/* Reads an inspect answer; -EINVAL with a message (escaped) in err when it is not one. */
int vg_docker_parse_container(const char *body, struct vg_docker_container *c,
			      char *err, size_t errlen);

/* Reads a list answer: at most max containers into out, their count in *n; -EINVAL with err. */
int vg_docker_parse_list(const char *body, struct vg_docker_summary *out, int max, int *n,
			 char *err, size_t errlen);

/*
 * Does a NetworkMode join the namespace of the container with this id and
 * name ("container:<id>", "container:<id prefix>" or "container:<name>")?
 */
bool vg_docker_joins(const char *network_mode, const char *id, const char *name);

/* The "message" of an error answer, or the body itself when it has none; escaped (vg_text_escape). */
void vg_docker_error_message(const char *body, char *buf, size_t len);

/* Reads one event line; -EINVAL when it is not a container event. */
int vg_docker_parse_event(const char *line, struct vg_docker_event *ev);

/* Is the container with this id and name the one word designates (a name, an id or its prefix)? */
bool vg_docker_designates(const char *id, const char *name, const char *word);

/*
 * Is the event's container the one `name` designates? Docker takes a name,
 * a full id or an id's prefix wherever it takes a container.
 */
bool vg_docker_event_names(const struct vg_docker_event *ev, const char *name);

/*
 * A streamed answer cut into lines: the engine writes one JSON object and a
 * newline per event, and the transport cuts wherever it likes.
 */
#define VG_LINE_MAX 16384

struct vg_line_buf {
	char buf[VG_LINE_MAX];
	size_t len;
	bool overlong;      /* dropping the rest of a line that did not fit */
};

typedef int (*vg_line_fn)(const char *line, void *ctx);

/*
 * Appends data and hands every complete line (without its newline) to fn.
 * A line longer than VG_LINE_MAX is dropped whole. Returns 0, or the first
 * non-zero value fn returned (the rest of data is then not read).
 */
int vg_line_buf_feed(struct vg_line_buf *lb, const char *data, size_t n,
		     vg_line_fn fn, void *ctx);

#endif
