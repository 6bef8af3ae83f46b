// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the agent's /metrics text (user/lib/metrics.c) and of the
 * --http address (user/lib/listen.c): each family once with HELP and TYPE,
 * the kernel's counters as they are, label values escaped, nothing for a
 * fact a guard does not have; addresses, ports and socket paths judged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "listen.h"
#include "metrics.h"

static const char status[] =
	"{\"guards\":[{\"cgroup\":\"/vpn.slice\",\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"tunnel_present\":true,"
	"\"state\":\"open\",\"lease_left_s\":90.5,\"denied\":{\"dns\":3,\"ipv6\":18446744073709551615,"
	"\"events_suppressed\":7,\"events_lost\":1},\"probe_last_success_unix\":1796000000.25,"
	"\"last_probe\":{\"seen\":\"198.51.100.7\",\"duration_s\":0.042}},"
	"{\"cgroup\":\"/gone\",\"mode\":\"tunnel\",\"tunnel\":\"wg1\",\"tunnel_present\":false,"
	"\"state\":\"open\",\"denied\":{}},"
	"{\"cgroup\":\"/odd\\\"name\\\\x\\n\",\"mode\":\"gateway\",\"state\":\"closed\",\"lease_left_s\":null,"
	"\"denied\":{\"not_gateway\":2},\"last_probe\":null}]}";

static void test_metrics_lines(void **state)
{
	(void)state;
	static const char *const want[] = {
		"vpnguard_build_info{version=\"0.1.0\"} 1\n",
		"vpnguard_guard_open{guard=\"/vpn.slice\"} 1\n",
		"vpnguard_guard_open{guard=\"/odd\\\"name\\\\x\\n\"} 0\n",
		"vpnguard_blocked_total{guard=\"/vpn.slice\",reason=\"dns\"} 3\n",
		"vpnguard_blocked_total{guard=\"/vpn.slice\",reason=\"ipv6\"} 18446744073709551615\n",
		"vpnguard_blocked_total{guard=\"/odd\\\"name\\\\x\\n\",reason=\"not_gateway\"} 2\n",
		"vpnguard_tunnel_present{guard=\"/vpn.slice\",tunnel=\"wg0\"} 1\n",
		/* Open, but its tunnel is gone: nothing goes out. */
		"vpnguard_guard_open{guard=\"/gone\"} 0\n",
		"vpnguard_tunnel_present{guard=\"/gone\",tunnel=\"wg1\"} 0\n",
		"vpnguard_lease_expiry_timestamp_seconds{guard=\"/vpn.slice\"} 1000090.500\n",
		"vpnguard_probe_last_success_timestamp_seconds{guard=\"/vpn.slice\"} 1796000000.250\n",
		"vpnguard_probe_duration_seconds{guard=\"/vpn.slice\"} 0.042000\n",
		"vpnguard_public_ip_info{guard=\"/vpn.slice\",ip=\"198.51.100.7\"} 1\n",
		"vpnguard_events_suppressed_total{guard=\"/vpn.slice\"} 7\n",
		"vpnguard_events_lost_total{guard=\"/vpn.slice\"} 1\n",
		"# TYPE vpnguard_blocked_total counter\n",
		"# TYPE vpnguard_guard_open gauge\n",
	};
	static const char *const never[] = {
		"reason=\"events_suppressed\"", "reason=\"events_lost\"",
		"vpnguard_tunnel_present{guard=\"/odd", "vpnguard_lease_expiry_timestamp_seconds{guard=\"/odd",
		"vpnguard_public_ip_info{guard=\"/odd",
	};
	struct json_object *st = json_tokener_parse(status);
	char *text;

	assert_non_null(st);
	text = vg_metrics_text(st, "0.1.0", 1000000.0);
	assert_non_null(text);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(text, want[i]))
			fail_msg("missing: %s\nin:\n%s", want[i], text);
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		if (strstr(text, never[i]))
			fail_msg("must not be there: %s", never[i]);
	/* Each family's HELP once. */
	for (const char *p = text; (p = strstr(p, "# HELP vpnguard_guard_open ")); p++)
		assert_ptr_equal(p, strstr(text, "# HELP vpnguard_guard_open "));
	free(text);
	json_object_put(st);
}

static void test_metrics_no_guards(void **state)
{
	(void)state;
	struct json_object *st = json_tokener_parse("{\"guards\":[]}");
	char *text = vg_metrics_text(st, "0.1.0", 0);

	assert_non_null(strstr(text, "# TYPE vpnguard_guard_open gauge\n"));
	assert_null(strstr(text, "vpnguard_guard_open{"));
	free(text);
	json_object_put(st);
}

static void test_listen_table(void **state)
{
	(void)state;
	static const struct { const char *in; int family, port; const char *why; } t[] = {
		{ "127.0.0.1:9871", AF_INET, 9871, NULL },
		{ "0.0.0.0:1", AF_INET, 1, NULL },
		{ "[::1]:9871", AF_INET6, 9871, NULL },
		{ "unix:/run/vpnguard/http.sock", AF_UNIX, 0, NULL },
		{ "unix:relative.sock", 0, 0, "absolute" },
		{ "localhost:9871", 0, 0, "not an IP address" },
		{ "127.0.0.1", 0, 0, "ADDR:PORT" },
		{ "127.0.0.1:0", 0, 0, "1 to 65535" },
		{ "127.0.0.1:65536", 0, 0, "1 to 65535" },
		{ "127.0.0.1:80x", 0, 0, "1 to 65535" },
		{ "::1:9871", 0, 0, "not an IP address" },
		{ "[127.0.0.1]:9871", 0, 0, "not an IP address" },
		{ "[::1:9871", 0, 0, "brackets" },
		{ ":9871", 0, 0, "ADDR:PORT" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct vg_listen l;
		char err[256] = "";
		int rc = vg_listen_parse(t[i].in, &l, err, sizeof(err));

		if (t[i].why) {
			if (rc != -22 || !strstr(err, t[i].why))
				fail_msg("%s: rc %d, '%s' (wanted '%s')", t[i].in, rc, err, t[i].why);
			continue;
		}
		if (rc)
			fail_msg("%s refused: %s", t[i].in, err);
		assert_int_equal(l.addr.ss_family, t[i].family);
		if (t[i].family == AF_INET)
			assert_int_equal(ntohs(((struct sockaddr_in *)&l.addr)->sin_port), t[i].port);
		if (t[i].family == AF_INET6)
			assert_int_equal(ntohs(((struct sockaddr_in6 *)&l.addr)->sin6_port), t[i].port);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_lines),
		cmocka_unit_test(test_metrics_no_guards),
		cmocka_unit_test(test_listen_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
