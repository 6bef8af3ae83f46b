// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of what the config file may be (user/cli/config.c):
 * no continuation lines (libinih would join an indented line to the value
 * above it), no BOM or control bytes, and, as sshd asks of its files, a
 * regular file that only root can change. A FIFO or device is refused before
 * anything is read from it, so none of these tests can hang: an alarm turns
 * a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

#define G "[guard g]\ncgroup = /a\ntunnel = wg0\n"

static void expect_text_refused(const char *text, size_t len, int line, const char *want)
{
	FILE *f = fmemopen((void *)text, len, "r");
	struct vg_config c;
	char err[512] = "", prefix[32];

	assert_non_null(f);
	if (vg_config_read(f, "vg.conf", &c, err, sizeof(err)) != -EINVAL)
		fail_msg("accepted:\n%s", text);
	fclose(f);
	snprintf(prefix, sizeof(prefix), "vg.conf:%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, want))
		fail_msg("message '%s' does not start with '%s' and say '%s'", err, prefix, want);
	assert_int_equal(c.n_guards, 0);
}

static void expect_text_ok(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct vg_config c;
	char err[512] = "";

	assert_non_null(f);
	if (vg_config_read(f, "vg.conf", &c, err, sizeof(err)))
		fail_msg("refused: %s\n%s", err, text);
	fclose(f);
	vg_config_free(&c);
}

#define REFUSED(text, line, want) expect_text_refused(text, sizeof(text) - 1, line, want)

static void test_continuation_lines(void **state)
{
	(void)state;
	/* The file: the second line opened everything. */
	REFUSED(G "allow = 192.168.0.0/16\n  0.0.0.0/0\n", 5, "indented");
	REFUSED(G "allow = 192.168.0.0/16\n\t0.0.0.0/0\n", 5, "continue");
	REFUSED(G "  allow = 10.0.0.0/8\n", 4, "indented");
	REFUSED("[guard g]\n cgroup = /a\ntunnel = wg0\n", 2, "indented");
	REFUSED(" [guard g]\ncgroup = /a\ntunnel = wg0\n", 1, "indented");
	/* Blank lines and comments may be indented: there is nothing to continue. */
	expect_text_ok(G "   \n\t\n  # a note\n\t; another\n   \r\n");
}

static void test_bom_and_control_bytes(void **state)
{
	(void)state;
	REFUSED("\xef\xbb\xbf" G, 1, "byte order mark");
	REFUSED(G "allow = 10.0.0.0/8\0 0.0.0.0/0\n", 4, "control character");
	REFUSED(G "dns = 10.0.0.1\x1b[2J\n", 4, "control character");
	REFUSED(G "\x7f\n", 4, "control character");
	/* CRLF line ends are no control characters to refuse. */
	expect_text_ok("[guard g]\r\ncgroup = /a\r\ntunnel = wg0\r\n");
}

/* A made-up stat: what vg_config_file_check judges. */
static struct stat st_of(mode_t mode, uid_t uid)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_mode = mode;
	st.st_uid = uid;
	return st;
}

static void check_stat(mode_t mode, uid_t uid, uid_t euid, const char *want)
{
	struct stat st = st_of(mode, uid);
	char err[512] = "";
	int rc = vg_config_file_check("/etc/vg.conf", &st, euid, err, sizeof(err));

	if (!want) {
		if (rc)
			fail_msg("mode %o uid %u refused: %s", (unsigned)mode, (unsigned)uid, err);
		return;
	}
	if (rc != -EINVAL || strncmp(err, "config /etc/vg.conf: ", 21) || !strstr(err, want))
		fail_msg("mode %o uid %u: %d '%s', not '%s'", (unsigned)mode, (unsigned)uid, rc, err, want);
}

static void test_file_check_table(void **state)
{
	(void)state;
	check_stat(S_IFREG | 0600, 0, 0, NULL);
	check_stat(S_IFREG | 0644, 0, 0, NULL);
	check_stat(S_IFREG | 0400, 0, 0, NULL);
	check_stat(S_IFREG | 0664, 0, 0, "writable by its group");
	check_stat(S_IFREG | 0646, 0, 0, "writable by anyone");
	check_stat(S_IFREG | 0666, 0, 0, "writable by anyone");
	check_stat(S_IFREG | 0600, 1000, 0, "owned by uid 1000, not root");
	/* Someone who is not root may read a file of their own (tests, a dry run). */
	check_stat(S_IFREG | 0600, 1000, 1000, NULL);
	check_stat(S_IFREG | 0600, 1001, 1000, "owned by uid 1001");
	check_stat(S_IFDIR | 0755, 0, 0, "a directory");
	check_stat(S_IFIFO | 0600, 0, 0, "a FIFO");
	check_stat(S_IFCHR | 0666, 0, 0, "a device");
	check_stat(S_IFBLK | 0600, 0, 0, "a device");
	check_stat(S_IFSOCK | 0600, 0, 0, "a socket");
}

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vg-conf.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void expect_load_refused(const char *path, const char *want)
{
	struct vg_config c;
	char err[512] = "";

	alarm(10);
	int rc = vg_config_load(path, &c, err, sizeof(err));

	alarm(0);
	if (rc != -EINVAL || !strstr(err, path) || !strstr(err, want))
		fail_msg("%s: %d '%s', not '%s'", path, rc, err, want);
	assert_int_equal(c.n_guards, 0);
}

static void test_load_not_regular(void **state)
{
	(void)state;
	char path[128];

	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_load_refused(path, "a FIFO");
	expect_load_refused("/dev/zero", "a device");
	expect_load_refused("/dev/null", "a device");
	expect_load_refused(dir, "a directory");
}

static void test_load_modes(void **state)
{
	(void)state;
	char path[128];
	struct vg_config c;
	char err[512];

	snprintf(path, sizeof(path), "%s/vg.conf", dir);
	write_file(path, G, 0600);
	if (vg_config_load(path, &c, err, sizeof(err)))
		fail_msg("refused: %s", err);
	vg_config_free(&c);
	assert_int_equal(chmod(path, 0620), 0);
	expect_load_refused(path, "writable by its group");
	assert_int_equal(chmod(path, 0602), 0);
	expect_load_refused(path, "writable by anyone");
}

/*
 * Ownership on a real file needs root to give the file away. Without root,
 * the same rule is shown on this user's own file: theirs is taken, and the
 * table above covers the refusals; either way something is asserted.
 */
static void test_load_owner(void **state)
{
	(void)state;
	char path[128];
	struct vg_config c;
	char err[512];

	snprintf(path, sizeof(path), "%s/owned.conf", dir);
	write_file(path, G, 0600);
	if (geteuid() != 0) {
		if (vg_config_load(path, &c, err, sizeof(err)))
			fail_msg("own file refused: %s", err);
		vg_config_free(&c);
		return;
	}
	assert_int_equal(chown(path, 65534, 65534), 0);
	expect_load_refused(path, "owned by uid 65534, not root");
}

static void test_load_too_large(void **state)
{
	(void)state;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/big.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 70000; i++)
		fputs("# sixteen bytes\n", f);
	fclose(f);
	chmod(path, 0600);
	expect_load_refused(path, "larger than 1 MiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_continuation_lines),
		cmocka_unit_test(test_bom_and_control_bytes),
		cmocka_unit_test(test_file_check_table),
		cmocka_unit_test(test_load_not_regular),
		cmocka_unit_test(test_load_modes),
		cmocka_unit_test(test_load_owner),
		cmocka_unit_test(test_load_too_large),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
