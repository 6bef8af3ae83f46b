// SPDX-License-Identifier: GPL-2.0
/*
 * The Docker engine's answers: an inspect answer, an event line, an error
 * body, a DOCKER_HOST, and the event stream cut anywhere (the first byte
 * says where).
 */
#include <stddef.h>
#include <stdint.h>
#include "docker_json.h"
#include "fuzz.h"

static int count_line(const char *line, void *ctx)
{
	/* A NUL in the stream cuts the line it is in short; that line may then look empty. */
	FUZZ_CHECK(!strchr(line, '\n'), "line handed out with a newline");
	FUZZ_CHECK(strlen(line) < VG_LINE_MAX, "line longer than the buffer");
	++*(int *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vg_line_buf lb;
	char *s = fuzz_string(data, size), err[512], buf[512], path[256];
	struct vg_docker_container c;
	struct vg_docker_event ev;
	size_t step = size ? data[0] % 64 + 1 : 1;
	int lines = 0;

	if (vg_docker_parse_container(s, &c, err, sizeof(err)))
		fuzz_assert_inert(err);
	else
		FUZZ_CHECK(!c.running || c.pid > 0, "a running container with pid %d", c.pid);
	if (!vg_docker_parse_event(s, &ev))
		vg_docker_event_names(&ev, s);
	vg_docker_error_message(s, buf, sizeof(buf));
	fuzz_assert_inert(buf);
	if (!vg_docker_host_socket(s, path, sizeof(path)))
		FUZZ_CHECK(path[0] == '/', "socket path '%s'", path);
	vg_docker_name_valid(s);
	memset(&lb, 0, sizeof(lb));
	for (size_t i = 0; i < size; i += step)
		vg_line_buf_feed(&lb, (const char *)data + i, size - i < step ? size - i : step, count_line, &lines);
	free(s);
	return 0;
}
