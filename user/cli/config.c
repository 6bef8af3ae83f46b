// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ini.h>
#include "config.h"
#include "listen.h"

struct parse {
	struct vg_config *c;
	const char *text;
	size_t len, pos;
	int line;                   /* counted by read_line: inih calls back per line read */
	bool mid_line;
	int headings, seen_headings; /* inih names the section in every call, never alone */
	struct vg_conf_guard *guard;
	bool in_agent;
	char why[512];              /* the first error the handler found */
	int why_line;
};

static int __attribute__((format(printf, 2, 3))) refuse(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->why_line) {
		va_start(ap, fmt);
		vsnprintf(p->why, sizeof(p->why), fmt, ap);
		va_end(ap);
		p->why_line = p->line;
	}
	return 0;
}

/* What inih would read otherwise than it looks: refused before inih sees the line. */
static bool line_refused(struct parse *p)
{
	const char *s = p->text + p->pos, *nl = memchr(s, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - s) : p->len - p->pos, lead = 0;
	char byte[8];

	if (p->line == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		return !refuse(p, "the file starts with a UTF-8 byte order mark (BOM): "
			       "save it without one");
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\r') || s[i] == 0x7f) {
			snprintf(byte, sizeof(byte), "0x%02x", (unsigned char)s[i]);
			return !refuse(p, "a control character (byte %s): not text", byte);
		}
	while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
		lead++;
	/*
	 * libinih as Debian builds it joins an indented line to the value above
	 * ("allow = 192.168.0.0/16" then "  0.0.0.0/0"); switched off, it would
	 * read the line as a key of its own or as a bad one. Neither is what was
	 * meant: say what the line is.
	 */
	if (lead && lead < n && !strchr(";#\r", s[lead]))
		return !refuse(p, "an indented line: INI would continue the value above with it; "
			       "write each value as its own unindented 'key = value' line");
	return false;
}

static char *read_line(char *buf, int size, void *arg)
{
	struct parse *p = arg;
	size_t n = 0;

	if (p->pos >= p->len || size < 2 || p->why_line)
		return NULL;
	/* inih may read a long line in pieces: a line starts after a newline. */
	if (!p->mid_line) {
		p->line++;
		if (line_refused(p))
			return NULL;
		p->headings += p->text[p->pos] == '[';
	}
	while (n + 1 < (size_t)size && p->pos < p->len)
		if ((buf[n++] = p->text[p->pos++]) == '\n')
			break;
	buf[n] = 0;
	p->mid_line = buf[n - 1] != '\n';
	return buf;
}

static const char *keep(struct parse *p, const char *v)
{
	char **s = realloc(p->c->strings, (p->c->n_strings + 1) * sizeof(*s));

	if (!s)
		return NULL;
	p->c->strings = s;
	return s[p->c->n_strings++] = strdup(v);
}

static int open_section(struct parse *p, const char *section)
{
	const char *name = section + strlen("guard");

	p->in_agent = !strcmp(section, "agent");
	p->guard = NULL;
	if (p->in_agent)
		return 1;
	if (strncmp(section, "guard", 5) || (*name && *name != ' '))
		return refuse(p, "unknown section [%s] (use [agent] or [guard NAME])", section);
	while (*name == ' ')
		name++;
	if (!*name || strlen(name) >= sizeof(p->guard->name))
		return refuse(p, "[%s]: a guard needs a name of 1 to 63 characters", section);
	for (int i = 0; i < p->c->n_guards; i++)
		if (!strcmp(p->c->guards[i].name, name))
			return refuse(p, "[guard %s] given twice", name);
	if (p->c->n_guards >= VG_MAX_CONF_GUARDS)
		return refuse(p, "[guard %s]: at most 16 guards", name);
	p->guard = &p->c->guards[p->c->n_guards++];
	snprintf(p->guard->name, sizeof(p->guard->name), "%s", name);
	p->guard->line = p->line;
	p->guard->o.cmd = VG_CMD_ATTACH;
	return 1;
}

static int agent_key(struct parse *p, const char *key, const char *value)
{
	char msg[PATH_MAX + 64];
	const char **slot = !strcmp(key, "log") ? &p->c->log :
			    !strcmp(key, "webhook") ? &p->c->webhook :
			    !strcmp(key, "http") ? &p->c->http :
			    !strcmp(key, "docker-host") ? &p->c->docker_host : NULL;

	if (!slot)
		return refuse(p, "[agent]: unknown key '%s' (log, webhook, http, docker-host)", key);
	if (*slot)
		return refuse(p, "[agent]: %s given twice", key);
	if (!*value)
		return refuse(p, "[agent]: %s needs a value", key);
	if (slot == &p->c->http && vg_listen_parse(value, &(struct vg_listen){ 0 }, msg, sizeof(msg)))
		return refuse(p, "[agent]: %s", msg);
	return (*slot = keep(p, value)) ? 1 : refuse(p, "%s", strerror(ENOMEM));
}

/* Switches are "key = yes" / "key = no"; the rest go through the command line's own setter. */
static int guard_key(struct parse *p, const char *key, const char *value)
{
	static const char *const not_here[] = { "config", "log", "webhook", "http", "no-agent" };
	char flag[64], msg[256];
	const char *v = value;

	for (size_t i = 0; i < sizeof(not_here) / sizeof(not_here[0]); i++)
		if (!strcmp(key, not_here[i]))
			return refuse(p, "[guard %s]: '%s' is not a guard option", p->guard->name, key);
	if (strlen(key) + 3 > sizeof(flag))
		return refuse(p, "[guard %s]: unknown key '%s'", p->guard->name, key);
	snprintf(flag, sizeof(flag), "--%s", key);
	if (vg_option_is_switch(VG_CMD_ATTACH, flag)) {
		if (strcmp(value, "yes") && strcmp(value, "no"))
			return refuse(p, "[guard %s]: %s = %s: yes or no", p->guard->name, key, value);
		if (!strcmp(value, "no"))
			return 1;
		v = NULL;
	} else if (*v && !(v = keep(p, value)))
		return refuse(p, "%s", strerror(ENOMEM));
	if (vg_option_set(&p->guard->o, VG_CMD_ATTACH, flag, v, msg, sizeof(msg)))
		return refuse(p, "[guard %s]: %s", p->guard->name, msg);
	return 1;
}

static int on_pair(void *arg, const char *section, const char *key, const char *value)
{
	struct parse *p = arg;

	if (p->why_line)
		return 0;
	if (p->headings != p->seen_headings) {
		p->seen_headings = p->headings;
		if (!open_section(p, section))
			return 0;
	}
	if (p->in_agent)
		return agent_key(p, key, value);
	if (!p->guard)
		return refuse(p, "'%s' outside a section ([agent] or [guard NAME])", key);
	return guard_key(p, key, value);
}

int vg_config_parse(const char *text, size_t len, const char *name, struct vg_config *c,
		    char *err, size_t errlen)
{
	struct parse p = { .c = c, .text = text, .len = len };
	char msg[256];
	int line;

	memset(c, 0, sizeof(*c));
	/* Debian's inih takes these at run time: whole long lines (URLs), first error only. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = 4096;
	ini_stop_on_first_error = true;
	/* Debian builds it with both on: a continuation line or a BOM is refused by read_line instead. */
	ini_allow_multiline = false;
	ini_allow_bom = false;
	line = ini_parse_stream(read_line, &p, on_pair, &p);
	if (!line && !p.why_line) {
		for (int i = 0; i < c->n_guards; i++) {
			if (!c->guards[i].o.docker_host)
				c->guards[i].o.docker_host = c->docker_host;
			if (!vg_attach_options_check(&c->guards[i].o, msg, sizeof(msg)) &&
			    !c->guards[i].o.no_agent)
				continue;
			snprintf(err, errlen, "%s:%d: [guard %s]: %s", name, c->guards[i].line,
				 c->guards[i].name, c->guards[i].o.no_agent ? "'no-agent' is not a guard option" : msg);
			vg_config_free(c);
			return -EINVAL;
		}
		if (c->n_guards)
			return 0;
		snprintf(err, errlen, "%s: no [guard NAME] section", name);
	} else if (line < 0) {
		snprintf(err, errlen, "%s: %s", name, strerror(ENOMEM));
	} else if (p.why_line && (!line || p.why_line <= line)) {
		snprintf(err, errlen, "%s:%d: %s", name, p.why_line, p.why);
	} else {
		snprintf(err, errlen, "%s:%d: not a 'key = value' line, [section] or comment "
			 "(or longer than 4095 characters)", name, line);
	}
	vg_config_free(c);
	return -EINVAL;
}

int vg_config_read(FILE *f, const char *name, struct vg_config *c, char *err, size_t errlen)
{
	/* One byte more than allowed tells a file at the limit from one past it. */
	char *text = malloc(VG_CONFIG_MAX + 1);
	size_t len = text ? fread(text, 1, VG_CONFIG_MAX + 1, f) : 0;
	int rc = !text ? -ENOMEM : ferror(f) ? -(errno ?: EIO) : len > VG_CONFIG_MAX ? -EFBIG : 0;

	memset(c, 0, sizeof(*c));
	if (!rc)
		rc = vg_config_parse(text, len, name, c, err, errlen);
	else if (rc == -EFBIG)
		snprintf(err, errlen, "config %s: larger than 1 MiB: not a config file", name);
	else
		snprintf(err, errlen, "config %s: read: %s", name, strerror(-rc));
	free(text);
	return rc == -EFBIG ? -EINVAL : rc;
}

int vg_config_file_check(const char *path, const struct stat *st, uid_t euid, char *err, size_t errlen)
{
	const char *type = S_ISDIR(st->st_mode) ? "a directory" : S_ISFIFO(st->st_mode) ? "a FIFO" :
			   S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device" :
			   S_ISSOCK(st->st_mode) ? "a socket" : NULL;

	if (type || !S_ISREG(st->st_mode))
		snprintf(err, errlen, "config %s: %s, not a regular file", path, type ?: "not a file");
	/* sshd's rule: only its owner may change it, and that is root (or whoever runs us). */
	else if (st->st_uid != 0 && st->st_uid != euid)
		snprintf(err, errlen, "config %s: owned by uid %u, not root: chown root %s",
			 path, (unsigned)st->st_uid, path);
	else if (st->st_mode & (S_IWGRP | S_IWOTH))
		snprintf(err, errlen, "config %s: writable by %s (mode %04o): chmod go-w %s", path,
			 st->st_mode & S_IWOTH ? "anyone" : "its group", (unsigned)(st->st_mode & 07777), path);
	else
		return 0;
	return -EINVAL;
}

int vg_config_load(const char *path, struct vg_config *c, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO opens at once (to be refused) instead of waiting for a writer. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	FILE *f;
	int rc;

	memset(c, 0, sizeof(*c));
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		snprintf(err, errlen, "config %s: %s", path, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if ((rc = vg_config_file_check(path, &st, geteuid(), err, errlen))) {
		close(fd);
		return rc;
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "config %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	rc = vg_config_read(f, path, c, err, errlen);
	fclose(f);
	return rc;
}

void vg_config_free(struct vg_config *c)
{
	for (int i = 0; i < c->n_strings; i++)
		free(c->strings[i]);
	free(c->strings);
	memset(c, 0, sizeof(*c));
}
