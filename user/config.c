// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>
#include "config.h"

struct parse {
	struct vg_config *c;
	FILE *f;
	int line;                   /* counted by read_line: inih calls back per line read */
	bool mid_line;
	int headings, seen_headings; /* inih names the section in every call, never alone */
	struct vg_conf_guard *guard;
	bool in_agent;
	char why[512];              /* the first error the handler found */
	int why_line;
};

static char *read_line(char *buf, int size, void *arg)
{
	struct parse *p = arg;
	char *r = fgets(buf, size, p->f);

	/* inih may read a long line in pieces: a line starts after a newline. */
	if (r && !p->mid_line) {
		p->line++;
		p->headings += buf[strspn(buf, " \t")] == '[';
	}
	if (r)
		p->mid_line = !strchr(buf, '\n');
	return r;
}

static int refuse(struct parse *p, const char *fmt, const char *a, const char *b)
{
	if (!p->why_line) {
		snprintf(p->why, sizeof(p->why), fmt, a, b);
		p->why_line = p->line;
	}
	return 0;
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
		return refuse(p, "unknown section [%s] (use [agent] or [guard NAME])%s", section, "");
	while (*name == ' ')
		name++;
	if (!*name || strlen(name) >= sizeof(p->guard->name))
		return refuse(p, "[%s]: a guard needs a name of 1 to 63 characters%s", section, "");
	for (int i = 0; i < p->c->n_guards; i++)
		if (!strcmp(p->c->guards[i].name, name))
			return refuse(p, "[guard %s] given twice%s", name, "");
	if (p->c->n_guards >= VG_MAX_CONF_GUARDS)
		return refuse(p, "[guard %s]: at most 16 guards%s", name, "");
	p->guard = &p->c->guards[p->c->n_guards++];
	snprintf(p->guard->name, sizeof(p->guard->name), "%s", name);
	p->guard->line = p->line;
	p->guard->o.cmd = VG_CMD_ATTACH;
	return 1;
}

static int agent_key(struct parse *p, const char *key, const char *value)
{
	const char **slot = !strcmp(key, "log") ? &p->c->log :
			    !strcmp(key, "webhook") ? &p->c->webhook :
			    !strcmp(key, "docker-host") ? &p->c->docker_host : NULL;

	if (!slot)
		return refuse(p, "[agent]: unknown key '%s' (log, webhook, docker-host)%s", key, "");
	if (*slot)
		return refuse(p, "[agent]: %s given twice%s", key, "");
	if (!*value)
		return refuse(p, "[agent]: %s needs a value%s", key, "");
	return (*slot = keep(p, value)) ? 1 : refuse(p, "%s%s", strerror(ENOMEM), "");
}

/* Switches are "key = yes" / "key = no"; the rest go through the command line's own setter. */
static int guard_key(struct parse *p, const char *key, const char *value)
{
	static const char *const not_here[] = { "config", "log", "webhook", "no-agent" };
	char flag[64], msg[256];
	const char *v = value;

	for (size_t i = 0; i < sizeof(not_here) / sizeof(not_here[0]); i++)
		if (!strcmp(key, not_here[i]))
			return refuse(p, "[guard %s]: '%s' is not a guard option", p->guard->name, key);
	if (strlen(key) + 3 > sizeof(flag))
		return refuse(p, "[guard %s]: unknown key '%s'", p->guard->name, key);
	snprintf(flag, sizeof(flag), "--%s", key);
	if (*v && !(v = keep(p, value)))
		return refuse(p, "%s%s", strerror(ENOMEM), "");
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
		return refuse(p, "'%s' outside a section ([agent] or [guard NAME])%s", key, "");
	return guard_key(p, key, value);
}

int vg_config_read(FILE *f, const char *name, struct vg_config *c, char *err, size_t errlen)
{
	struct parse p = { .c = c, .f = f };
	char msg[256];
	int line;

	memset(c, 0, sizeof(*c));
	/* Debian's inih takes these at run time: whole long lines (URLs), first error only. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = 4096;
	ini_stop_on_first_error = true;
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

int vg_config_load(const char *path, struct vg_config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int rc;

	if (!f) {
		rc = -errno;
		memset(c, 0, sizeof(*c));
		snprintf(err, errlen, "config %s: %s", path, strerror(-rc));
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
