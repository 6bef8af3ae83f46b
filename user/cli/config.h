/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The config file: INI (libinih). Every attach option, one [guard NAME]
 * section per guard, keys are the long option names without "--":
 *
 *   [agent]
 *   log = /var/log/vpnguard/events.jsonl
 *   webhook = https://ntfy.example/vpn
 *   http = 127.0.0.1:9871
 *   docker-host = unix:///var/run/docker.sock
 *
 *   [guard torrent]
 *   cgroup = /sys/fs/cgroup/vpnguard.slice
 *   tunnel = wg0
 *   allow = 192.168.1.0/24
 *   allow = 172.18.0.0/16
 *   probe-url = https://10.64.0.1/ip
 *
 * Repeatable options are repeated keys. Pure but for vg_config_load, which
 * opens and checks the file.
 */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include <stdio.h>
#include <sys/stat.h>
#include "args.h"

#define VG_MAX_CONF_GUARDS 16

struct vg_conf_guard {
	char name[64];
	int line;                   /* of its first key */
	struct vg_options o;        /* cmd VG_CMD_ATTACH; strings owned by the config */
};

struct vg_config {
	const char *log;
	const char *webhook;
	const char *http;
	const char *docker_host;    /* for the guards that name none */
	struct vg_conf_guard guards[VG_MAX_CONF_GUARDS];
	int n_guards;
	char **strings;             /* every value, for vg_config_free */
	int n_strings;
};

#define VG_CONFIG_MAX (1u << 20)

/*
 * Parses len bytes of text, the file name (for messages). On a bad file
 * returns -EINVAL and err reads "NAME:LINE: reason"; *c is left empty either
 * way on failure. Refused besides what libinih refuses: indented lines (INI
 * continuation lines), a UTF-8 BOM, control characters.
 */
int vg_config_parse(const char *text, size_t len, const char *name, struct vg_config *c,
		    char *err, size_t errlen);

/* Reads the file name from f (at most VG_CONFIG_MAX bytes) and parses it. */
int vg_config_read(FILE *f, const char *name, struct vg_config *c, char *err, size_t errlen);

/*
 * What the file at path may be, from its stat: a regular file that only root
 * (or euid, who runs us) can write, as sshd asks of its files. -EINVAL with
 * err naming path and the cause.
 */
int vg_config_file_check(const char *path, const struct stat *st, uid_t euid, char *err, size_t errlen);

/*
 * Opens path without blocking (a FIFO), checks it (vg_config_file_check)
 * before reading a byte, and reads it; -errno with err when it cannot be
 * opened, -EINVAL when it is no file to take.
 */
int vg_config_load(const char *path, struct vg_config *c, char *err, size_t errlen);

void vg_config_free(struct vg_config *c);

#endif
