// SPDX-License-Identifier: GPL-2.0
/*
 * report: the agent's log over the last --since (default 24h), per guard
 * (user/lib/leak_report.h does the counting). The log is --log, else the
 * running agent's, else the config's [agent] log, else the default; the
 * files logrotate moved aside (FILE.1, FILE.2.gz, ...) are read first, back
 * to the first one that ends before the window (it holds the state the
 * window starts in). --post sends the JSON to [agent]'s webhook.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <json-c/json.h>
#include "args.h"
#include "clock.h"
#include "commands.h"
#include "config.h"
#include "event_fmt.h"
#include "events.h"
#include "http.h"
#include "leak_report.h"
#include "redact.h"
#include "error.h"

#define MAX_ROTATED 16
#define POST_TRIES 3
#define POST_TIMEOUT_MS 10000

/* The agent writes at most 16 KiB a line: a longer one is no record. */
#define LINE_MAX_LEN 65536

/* Every line of path (plain or gzip) into r; -errno with the message said. */
static int read_file(struct vg_leak_report *r, const char *path)
{
	static char line[LINE_MAX_LEN];
	gzFile f = gzopen(path, "rb");
	bool skipping = false;

	if (!f)
		return vg_error(errno ? -errno : -ENOMEM, "report: open log %s", path);
	while (gzgets(f, line, sizeof(line))) {
		size_t n = strlen(line);
		bool whole = n && line[n - 1] == '\n';

		if (skipping || (!whole && !gzeof(f))) {
			/* Too long: the rest of it up to its newline goes too, counted once. */
			if (!skipping)
				vg_leak_report_garbage(r);
			skipping = !whole;
			continue;
		}
		vg_leak_report_line(r, line, n);
	}
	int err;
	const char *msg = gzerror(f, &err);

	if (err && err != Z_STREAM_END) {
		int e = err == Z_ERRNO ? -errno : -EIO;

		gzclose(f);
		return vg_error(e, "report: read log %s%s%s", path, err == Z_ERRNO ? "" : ": ", err == Z_ERRNO ? "" : msg);
	}
	gzclose(f);
	return 0;
}

/* path.N or path.N.gz, when one is there. */
static bool rotated(const char *path, int n, char *out, size_t len, struct stat *st)
{
	snprintf(out, len, "%s.%d", path, n);
	if (!stat(out, st))
		return true;
	snprintf(out, len, "%s.%d.gz", path, n);
	return !stat(out, st);
}

static int read_log(struct vg_leak_report *r, const char *path, int64_t from_ns)
{
	char older[MAX_ROTATED][PATH_MAX];
	struct stat st;
	int n = 0, err;

	/* Open the current file first: a log that is not there is the error to report. */
	if (access(path, R_OK))
		return vg_error(-errno, "report: open log %s", path);
	while (n < MAX_ROTATED && rotated(path, n + 1, older[n], sizeof(older[n]), &st)) {
		n++;
		if ((int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec < from_ns)
			break;
	}
	while (n--)
		if ((err = read_file(r, older[n])))
			return err;
	return read_file(r, path);
}

static int post(const char *url, struct json_object *rep)
{
	struct json_object *body = NULL;
	char shown[512], err[256], err_shown[1024], summary[1024];
	bool leak = vg_leak_report_leaked(rep);
	struct vg_http_req req = { .url = url, .timeout_ms = POST_TIMEOUT_MS };
	int rc = -EIO;

	vg_url_redact(url, shown, sizeof(shown));
	if (json_object_deep_copy(rep, &body, NULL))
		return vg_error(-ENOMEM, "report: post to %s", shown);
	/* The fields Discord (content), Gotify and ntfy (title, message, priority) show. */
	vg_leak_report_summary(rep, summary, sizeof(summary));
	json_object_object_add(body, "event", json_object_new_string("report"));
	json_object_object_add(body, "title", json_object_new_string(leak ? "vpnguard report: LEAK" : "vpnguard report"));
	json_object_object_add(body, "message", json_object_new_string(summary));
	json_object_object_add(body, "content", json_object_new_string(summary));
	json_object_object_add(body, "priority", json_object_new_int(leak ? 8 : 3));
	req.post_json = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	for (int t = 1; t <= POST_TRIES && rc; t++) {
		if (t > 1)
			sleep(1u << (t - 2));
		rc = vg_http_request(&req, NULL, NULL, err, sizeof(err));
		/* The receiver's answer is the network's text. */
		if (rc)
			fprintf(stderr, "vpnguard-bpf: report: post to %s: try %d of %d: %s\n", shown, t, POST_TRIES,
				vg_text_escape(err, err_shown, sizeof(err_shown)));
	}
	json_object_put(body);
	return rc;
}

int vg_cmd_report(const struct vg_options *o)
{
	const char *config_path = o->config ?: VG_DEFAULT_CONFIG;
	int64_t to = vg_real_ns(), from = to - (int64_t)(o->since_ms ?: VG_REPORT_DEFAULT_SINCE_MS) * 1000000;
	struct vg_config conf;
	bool have_conf = false;
	char err[1024], *agent_log = NULL, *text;
	const char *log;
	struct vg_leak_report *r;
	struct json_object *rep;
	int ret;

	memset(&conf, 0, sizeof(conf));
	/* The config is needed for --post; otherwise it only may name the log. */
	if (o->post || o->config || !o->log) {
		have_conf = !vg_config_load(config_path, &conf, err, sizeof(err));
		if (!have_conf && (o->post || o->config)) {
			fprintf(stderr, "vpnguard-bpf: report: %s\n", err);
			return EXIT_RUNTIME;
		}
	}
	if (o->post && !conf.webhook) {
		fprintf(stderr, "vpnguard-bpf: report: --post: no webhook in [agent] of %s\n", config_path);
		vg_config_free(&conf);
		return EXIT_RUNTIME;
	}
	log = o->log ?: (agent_log = vg_agent_log_path()) ?: (have_conf && conf.log ? conf.log : VG_DEFAULT_LOG);
	r = vg_leak_report_new(from, to);
	if (!r || read_log(r, log, from)) {
		vg_leak_report_free(r);
		free(agent_log);
		vg_config_free(&conf);
		return EXIT_RUNTIME;
	}
	rep = vg_leak_report_result(r);
	vg_leak_report_free(r);
	json_object_object_add(rep, "log_path", json_object_new_string(log));
	if (o->json) {
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if ((text = vg_leak_report_text(rep))) {
		fputs(text, stdout);
		free(text);
	}
	fflush(stdout);
	ret = vg_leak_report_leaked(rep) ? VG_REPORT_EXIT_LEAK : EXIT_OK;
	if (o->post && post(conf.webhook, rep))
		ret = EXIT_RUNTIME;
	json_object_put(rep);
	free(agent_log);
	vg_config_free(&conf);
	return ret;
}
