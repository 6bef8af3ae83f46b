// SPDX-License-Identifier: GPL-2.0
/* doctor: what this host has of what the kill switch needs, one line per check (doctor.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>
#include "commands.h"
#include "doctor.h"
#include "event_fmt.h"
#include "error.h"

int vg_cmd_doctor(bool json)
{
	struct vg_doc_check c[VG_DOC_CHECKS];
	struct vg_doc_facts *f = calloc(1, sizeof(*f));
	char line[4096], out[4096 * 4];
	int n, r = f ? vg_doctor_probe(f) : -ENOMEM, rc = EXIT_OK;

	if (r) {
		vg_error(r, "doctor: read /proc/self/mounts");
		if (f)
			vg_doctor_facts_free(f);
		free(f);
		return EXIT_RUNTIME;
	}
	n = vg_doctor_judge(f, c, VG_DOC_CHECKS);
	vg_doctor_facts_free(f);
	free(f);
	for (int i = 0; i < n; i++)
		if (c[i].level == VG_DOC_FAIL)
			rc = EXIT_RUNTIME;
	if (json) {
		struct json_object *o = vg_doctor_json(c, n);

		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return rc;
	}
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%-4s %-16s %s%s%s", vg_doc_level_name(c[i].level), c[i].name,
			 c[i].text, c[i].fix[0] ? "; fix: " : "", c[i].fix);
		puts(vg_text_escape(line, out, sizeof(out)));
	}
	return rc;
}
