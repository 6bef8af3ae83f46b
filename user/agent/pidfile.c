// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "paths.h"
#include "pidfile.h"
#include "error.h"

int vg_pidfile_take(const char *log_path)
{
	char real[PATH_MAX];
	int fd, err;

	if (mkdir(vg_run_dir(), 0700) && errno != EEXIST) {
		err = vg_error(-errno, "create %s", vg_run_dir());
		return err;
	}
	fd = open(vg_agent_pidfile(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = vg_error(-errno, "open %s", vg_agent_pidfile());
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EALREADY : -errno;
		if (err != -EALREADY)
			vg_error(-errno, "lock %s", vg_agent_pidfile());
		close(fd);
		return err;
	}
	if (ftruncate(fd, 0) || dprintf(fd, "%d\n%s\n", getpid(),
					realpath(log_path, real) ? real : log_path) < 0) {
		err = vg_error(-errno, "write %s", vg_agent_pidfile());
		close(fd);
		return err;
	}
	return fd;
}

void vg_pidfile_drop(int fd)
{
	if (fd < 0)
		return;
	unlink(vg_agent_pidfile());
	rmdir(vg_run_dir()); /* only when nothing else is in it */
	close(fd);
}

pid_t vg_pidfile_holder(char **log_path)
{
	FILE *f = fopen(vg_agent_pidfile(), "re");
	char line[PATH_MAX];
	long pid = 0;

	if (!f)
		return 0;
	/* Held means an agent runs: a file nobody holds is a dead agent's. */
	if (!flock(fileno(f), LOCK_SH | LOCK_NB) || fscanf(f, "%ld\n", &pid) != 1 || pid <= 0 ||
	    (log_path && !fgets(line, sizeof(line), f)))
		pid = 0;
	if (pid && log_path) {
		line[strcspn(line, "\n")] = 0;
		*log_path = strdup(line);
	}
	fclose(f);
	return (pid_t)pid;
}
