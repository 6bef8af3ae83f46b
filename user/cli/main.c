// SPDX-License-Identifier: GPL-2.0
/* vpnguard-bpf: command line. The contract is docs/design.md, "The command line". */
#include <stdio.h>
#include <unistd.h>
#include "args.h"
#include "commands.h"
#include "version.h"

static int usage_error(const char *msg)
{
	fprintf(stderr, "vpnguard-bpf: %s\n%s", msg, vg_usage);
	return EXIT_USAGE;
}

/* Every command but help and version reads or writes the kernel's maps. */
static int need_root(const char *cmd)
{
	if (geteuid() == 0)
		return 0;
	fprintf(stderr, "vpnguard-bpf: %s needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)\n", cmd);
	return EXIT_RUNTIME;
}

int main(int argc, char **argv)
{
	struct vg_options o;
	char err[512];
	int rc;

	if (vg_parse_args(argc, argv, &o, err, sizeof(err)))
		return usage_error(err);
	if (o.cmd == VG_CMD_HELP) {
		fputs(vg_usage, stdout);
		return EXIT_OK;
	}
	if (o.cmd == VG_CMD_VERSION) {
		puts("vpnguard-bpf " VG_VERSION);
		return EXIT_OK;
	}
	if ((rc = need_root(vg_cmd_name(o.cmd))))
		return rc;
	switch (o.cmd) {
	case VG_CMD_ATTACH:
		return vg_cmd_attach(&o);
	case VG_CMD_DETACH:
		return vg_cmd_detach(&o);
	case VG_CMD_STATUS:
		return o.check ? vg_cmd_status_check(o.check, o.json) : vg_cmd_status(o.json);
	case VG_CMD_EVENTS:
		return vg_cmd_events(o.follow, o.json);
	case VG_CMD_SCAN:
		return vg_cmd_scan(o.json);
	case VG_CMD_REPORT:
		return vg_cmd_report(&o);
	case VG_CMD_DOCTOR:
		return vg_cmd_doctor(o.json);
	default:
		return usage_error("no command given");
	}
}
