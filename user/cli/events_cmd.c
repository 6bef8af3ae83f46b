// SPDX-License-Identifier: GPL-2.0
/* events: the agent's log when an agent runs, else the kernel's ring buffer itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include "commands.h"
#include "event_fmt.h"
#include "events.h"
#include "loader.h"
#include "error.h"

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
		vg_error(-errno, "open log %s", path);
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
			vg_error(-errno, "open ring buffer %s/vg_events", VG_PIN_ROOT);
		return 1;
	}
	ret = vg_event_reader_drain(r);
	while (follow && !stop && ret >= 0)
		ret = vg_event_reader_poll(r, 500);
	vg_event_reader_close(r);
	if (ret < 0 && ret != -EINTR) {
		vg_error(ret, "read ring buffer");
		return 1;
	}
	return 0;
}
