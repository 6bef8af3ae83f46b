// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of vg_url_redact (user/lib/redact.c): a webhook's
 * or probe's URL in a message keeps its scheme, host and path (which URL
 * failed) and loses what may be a secret: the userinfo, every query value,
 * the fragment. No buffer size shows a piece of the secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "redact.h"

static void test_redact_table(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } t[] = {
		{ "https://ntfy.example/topic?token=tk_abc123", "https://ntfy.example/topic?token=<redacted>" },
		{ "https://user:pass@ntfy.example/topic", "https://<redacted>@ntfy.example/topic" },
		{ "https://gotify.example/message?token=AbC&priority=5",
		  "https://gotify.example/message?token=<redacted>&priority=<redacted>" },
		{ "http://10.0.0.1/?SECRET", "http://10.0.0.1/?<redacted>" },
		{ "https://h.example/p#access_token=x", "https://h.example/p#<redacted>" },
		{ "https://u:p@h.example:8443/p?k=v#f", "https://<redacted>@h.example:8443/p?k=<redacted>#<redacted>" },
		/* No scheme: curl takes it as http; the userinfo is still one. */
		{ "user:pw@host/x?y=1", "<redacted>@host/x?y=<redacted>" },
		/* A password with an unencoded '/' or '@' is still all hidden. */
		{ "https://u:pa/ss@host/", "https://<redacted>@host/" },
		{ "https://u:p@ss@host/", "https://<redacted>@host/" },
		{ "https://h/p?a=1&&b=2", "https://h/p?a=<redacted>&&b=<redacted>" },
		{ "https://h/p?=x", "https://h/p?=<redacted>" },
		{ "https://h/p?", "https://h/p?" },
		{ "https://h/p#", "https://h/p#" },
		/* Nothing secret: as it is. */
		{ "http://127.0.0.1:8000", "http://127.0.0.1:8000" },
		{ "https://ipv4.icanhazip.com/", "https://ipv4.icanhazip.com/" },
		{ "", "" },
		/* Not a scheme: "1http" starts with a digit; the '@' still ends a userinfo. */
		{ "1http://a@b/", "<redacted>@b/" },
		/* Shown escaped, as every message is. */
		{ "https://h/\x1b[2J?x=\n", "https://h/\\x1b[2J?x=<redacted>" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_ptr_equal(vg_url_redact(t[i].in, buf, sizeof(buf)), buf);
		if (strcmp(buf, t[i].out))
			fail_msg("'%s' gave '%s', not '%s'", t[i].in, buf, t[i].out);
	}
}

/* Cut to any length: a prefix of the redacted form, never a piece of the secrets. */
static void test_redact_cut(void **state)
{
	(void)state;
	static const char url[] = "https://admin:HUNTER2@ntfy.example/topic?token=SECRETTOKEN#SECRETFRAG";
	char full[256], buf[256];

	vg_url_redact(url, full, sizeof(full));
	for (size_t len = 0; len <= strlen(full) + 1; len++) {
		memset(buf, 'Z', sizeof(buf));
		vg_url_redact(url, buf, len);
		if (!len) {
			assert_int_equal(buf[0], 'Z');
			continue;
		}
		if (strlen(buf) >= len || strncmp(buf, full, strlen(buf)))
			fail_msg("len %zu: '%s' is no prefix of '%s'", len, buf, full);
		if (strstr(buf, "HUNTER") || strstr(buf, "SECRET") || strstr(buf, "admin"))
			fail_msg("len %zu: '%s' shows a secret", len, buf);
		assert_int_equal(buf[len], 'Z');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact_table),
		cmocka_unit_test(test_redact_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
