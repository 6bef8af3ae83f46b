#!/usr/bin/env bash
# make install: what lands where (DESTDIR and PREFIX honoured), the units, slice and timer pass
# `systemd-analyze verify`, the sample config is one the agent takes, an existing
# /etc/vpnguard/vpnguard.conf is never overwritten. No root needed; touches only a temp dir.
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

make -s install DESTDIR="$t/dest" PREFIX=/usr >"$t/out" 2>&1 || { nok "make install DESTDIR"; cat "$t/out"; }
for f in usr/sbin/vpnguard-bpf usr/lib/systemd/system/vpnguard.service usr/lib/systemd/system/vpnguard.slice \
	usr/lib/systemd/system/vpnguard-report.service usr/lib/systemd/system/vpnguard-report.timer \
	etc/logrotate.d/vpnguard etc/vpnguard/vpnguard.conf usr/share/doc/vpnguard-bpf/vpnguard.conf.sample \
	usr/share/man/man8/vpnguard-bpf.8 usr/share/man/man5/vpnguard.conf.5 \
	usr/share/bash-completion/completions/vpnguard-bpf; do
	if [ -f "$t/dest/$f" ]; then ok "installed /$f"; else nok "missing /$f"; fi
done
[ -x "$t/dest/usr/sbin/vpnguard-bpf" ] && ok "binary is executable" || nok "binary is not executable"
grep -qx 'ExecStart=/usr/sbin/vpnguard-bpf attach --config /etc/vpnguard/vpnguard.conf' \
	"$t/dest/usr/lib/systemd/system/vpnguard.service" && ok "unit runs the installed binary on the installed config" ||
	nok "unit ExecStart: $(grep ExecStart= "$t/dest/usr/lib/systemd/system/vpnguard.service")"
for want in Type=notify Before=docker.service 'ExecReload=/bin/kill -HUP $MAINPID'; do
	grep -qF "$want" "$t/dest/usr/lib/systemd/system/vpnguard.service" && ok "unit has $want" || nok "unit lacks $want"
done
# The daily report: the installed binary on the installed config; a leak (exit 3) is no failure.
rs=$t/dest/usr/lib/systemd/system/vpnguard-report.service
grep -qx 'ExecStart=/usr/sbin/vpnguard-bpf report --since 24h --post --config /etc/vpnguard/vpnguard.conf' "$rs" &&
	ok "report unit runs the installed binary on the installed config" || nok "report unit ExecStart: $(grep ExecStart= "$rs")"
for want in Type=oneshot SuccessExitStatus=3; do
	grep -qx "$want" "$rs" && ok "report unit has $want" || nok "report unit lacks $want"
done
for want in OnCalendar=daily Persistent=true WantedBy=timers.target; do
	grep -qx "$want" "$t/dest/usr/lib/systemd/system/vpnguard-report.timer" && ok "report timer has $want" ||
		nok "report timer lacks $want"
done
# Installed, not enabled: nothing links to it.
if find "$t/dest" -name '*.wants' | grep -q .; then nok "install enabled a unit: $(find "$t/dest" -name '*.wants')"
else ok "install enables no unit (the report timer is the user's to enable)"; fi
[ "$(stat -c %a "$t/dest/etc/vpnguard/vpnguard.conf")" = 600 ] && ok "config is 0600" || nok "config mode"

# A second install keeps a config the user edited.
echo "# mine" >>"$t/dest/etc/vpnguard/vpnguard.conf"
make -s install DESTDIR="$t/dest" PREFIX=/usr >/dev/null 2>&1
tail -1 "$t/dest/etc/vpnguard/vpnguard.conf" | grep -qx "# mine" && ok "existing config kept" || nok "existing config overwritten"

# systemd checks the unit against real paths: install into the temp dir itself.
if ! command -v systemd-analyze >/dev/null; then
	nok "systemd-analyze is not installed (sh scripts/install-deps.sh)"
else
	make -s install SBINDIR="$t/v/sbin" UNITDIR="$t/v/unit" SYSCONFDIR="$t/v/etc" DOCDIR="$t/v/doc" >/dev/null 2>&1
	if out=$(systemd-analyze verify "$t/v/unit/vpnguard.service" "$t/v/unit/vpnguard.slice" 2>&1); then
		ok "systemd-analyze verify vpnguard.service vpnguard.slice"
	else
		nok "systemd-analyze verify: $out"
	fi
	if out=$(systemd-analyze verify "$t/v/unit/vpnguard-report.service" "$t/v/unit/vpnguard-report.timer" 2>&1); then
		ok "systemd-analyze verify vpnguard-report.service vpnguard-report.timer"
	else
		nok "systemd-analyze verify (report): $out"
	fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
