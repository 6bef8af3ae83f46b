// SPDX-License-Identifier: GPL-2.0
/* scan: the namespace-escape scan and ghosts, as JSON or lines for a person. */
#include <limits.h>
#include <stdio.h>
#include <json-c/json.h>
#include "commands.h"
#include "event_fmt.h"
#include "scan.h"
#include "scan_logic.h"

int vg_cmd_scan(bool json)
{
	struct json_object *res = NULL, *findings, *guards;
	char line[PATH_MAX + 1024];
	size_t n, n_guards;
	int n_procs;

	if (vg_scan_docker(&res))
		return 1;
	json_object_object_get_ex(res, "findings", &findings);
	n = json_object_array_length(findings);
	if (json) {
		puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		json_object_object_get_ex(res, "guards", &guards);
		n_guards = json_object_array_length(guards);
		n_procs = json_object_get_int(json_object_object_get(res, "processes"));
		printf("scanned %zu guard%s, %d process%s in them\n", n_guards, n_guards == 1 ? "" : "s",
		       n_procs, n_procs == 1 ? "" : "es");
		for (size_t i = 0; i < n; i++) {
			vg_finding_to_line(json_object_array_get_idx(findings, i), line, sizeof(line));
			puts(line);
		}
		/* The engine could not be asked: said, not a finding (the exit status stays). */
		if (vg_json_str(res, "note")) {
			vg_text_printf(line, sizeof(line), "note: %s", vg_json_str(res, "note"));
			puts(line);
		}
		if (n)
			printf("%zu finding%s\n", n, n == 1 ? "" : "s");
		else
			printf("nothing found\n");
	}
	json_object_put(res);
	return n ? VG_SCAN_EXIT_FOUND : 0;
}
