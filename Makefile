# SPDX-License-Identifier: GPL-2.0
# vpnguard-bpf: `make` builds, `make test` installs what is missing and runs every test,
# `make demo` installs what is missing and runs the built-in example,
# `make bench` installs what is missing and measures (tests/bench/run.sh).

OUT      := build
ARCH     ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG    ?= clang
BPFTOOL  ?= bpftool
CC       ?= cc
PREFIX   ?= /usr/local
SBINDIR  ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR  ?= $(PREFIX)/lib/systemd/system
DOCDIR   ?= $(PREFIX)/share/doc/vpnguard-bpf
MANDIR   ?= $(PREFIX)/share/man
# bash-completion's completionsdir (pkg-config) for PREFIX=/usr; it also reads /usr/local/share/...
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
VERSION  := $(shell sed -n 's/^\#define VG_VERSION "\(.*\)"/\1/p' user/lib/version.h)

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ivmlinux -Ibpf
# user/ by concern; headers are included by name, so each folder is on the include path.
USER_DIRS  := cli core agent docker scan lib
CFLAGS     ?= -O2 -g
CFLAGS     += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Ibpf -I$(OUT) $(addprefix -Iuser/,$(USER_DIRS))
DEPFLAGS   := -MMD -MP
# libcurl and libmicrohttpd are loaded when first used (user/lib/dl.h), not linked: their headers only.
PKGS       := libbpf libmnl json-c inih libsystemd
LDLIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lmnl -ljson-c -linih -lsystemd) -lelf -lz -lpthread -ldl

# Pure logic: no syscalls beyond libc, unit-tested (and fuzzed) without root, clang or bpftool.
PURE_SRCS  := user/cli/args.c user/cli/config.c user/core/policy.c user/lib/event_fmt.c \
              user/agent/health.c user/agent/history_slots.c user/agent/restart_budget.c user/lib/redact.c user/lib/metrics.c user/lib/listen.c \
              user/docker/docker_json.c user/scan/proc_parse.c user/scan/scan_logic.c \
              user/lib/leak_report.c user/lib/leak_report_result.c user/lib/leak_report_text.c \
              user/lib/blocked_tally.c \
              user/core/verdict.c user/core/doctor.c
USER_SRCS  := $(wildcard $(addsuffix /*.c,$(addprefix user/,$(USER_DIRS))))
USER_OBJS  := $(patsubst %.c,$(OUT)/%.o,$(USER_SRCS))
PURE_OBJS  := $(patsubst %.c,$(OUT)/%.o,$(PURE_SRCS))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUT)/%,$(wildcard tests/unit/test_*.c))

# A recipe that fails leaves no half-written target (an empty skeleton would pass as up to date).
.DELETE_ON_ERROR:

.PHONY: all bpf deps test unit-test kernel-test demo bench clean install man deb
all: $(OUT)/vpnguard-bpf $(OUT)/vgprobe $(OUT)/vgdockerev

bpf: $(OUT)/vpnguard.bpf.o

$(OUT):
	mkdir -p $@

$(OUT)/vpnguard.bpf.o: bpf/vpnguard.bpf.c $(wildcard bpf/*.h) vmlinux/vmlinux.h | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/vpnguard.skel.h: $(OUT)/vpnguard.bpf.o
	$(BPFTOOL) gen skeleton $< name vpnguard_bpf > $@

$(OUT)/user/%.o: user/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# Only the loader opens the programs; nothing else waits for clang and bpftool.
$(OUT)/user/core/loader.o: $(OUT)/vpnguard.skel.h

# The status page, served from the binary as it is in the source.
$(OUT)/status_html.h: user/agent/status.html | $(OUT)
	{ echo 'static const unsigned char vg_status_html[] = {'; xxd -i < $<; echo '};'; \
	  echo 'static const unsigned int vg_status_html_len = sizeof(vg_status_html);'; } > $@
$(OUT)/user/agent/web.o: $(OUT)/status_html.h

-include $(USER_OBJS:.o=.d)

$(OUT)/vpnguard-bpf: $(USER_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/vgprobe: tests/tools/vgprobe.c | $(OUT)
	$(CC) -O2 -g -Wall -Wextra -Werror $< -o $@

# The Docker tests' event reader: vpnguard-bpf's own client against a real engine.
$(OUT)/vgdockerev: tests/tools/vgdockerev.c $(patsubst %,$(OUT)/user/%.o,docker/docker docker/docker_json lib/http lib/dl core/cgroup scan/proc_parse lib/event_fmt core/policy)
	$(CC) $(CFLAGS) $^ $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c) -lpthread -o $@

$(OUT)/vgbench: tests/bench/vgbench.c | $(OUT)
	$(CC) -O2 -g -Wall -Wextra -Werror $< -o $@

$(OUT)/test_%: tests/unit/test_%.c $(PURE_OBJS) | $(OUT)
	$(CC) $(CFLAGS) $^ $(shell pkg-config --libs cmocka json-c inih 2>/dev/null || echo -lcmocka -ljson-c -linih) -o $@

# The man pages, from scdoc sources (man/*.scd), with the version of user/lib/version.h.
MAN_PAGES := $(OUT)/man/vpnguard-bpf.8 $(OUT)/man/vpnguard.conf.5
man: $(MAN_PAGES)

$(OUT)/man/%: man/%.scd user/lib/version.h
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(VERSION)/g' $< | scdoc > $@

# The Debian package (docs/packaging.md), built from a copy of the tree under build/ because
# dpkg-buildpackage writes beside the source directory: the tracked and untracked-but-not-ignored
# files of a git checkout (DEB_REF=HEAD: a commit's tree instead, as CI has it, without what is being
# edited), else everything but build/. DEB_VERSION=0.0.9 builds the copy as version 0.0.9 (its
# version.h and changelog say so; default: the copy's own version) for upgrade tests. build/deb/
# keeps every version built; the dbgsym package is not made (DEB_BUILD_OPTIONS=noddebs). The
# package's own makes get nothing of this one's flags or variables (MAKEFLAGS).
DEB_PARENT := $(OUT)/debsrc-$(or $(DEB_VERSION),$(if $(DEB_REF),ref,tree))
deb:
	rm -rf $(DEB_PARENT)
	mkdir -p $(DEB_PARENT)/src $(OUT)/deb
	if [ -n "$(DEB_REF)" ]; then \
		git archive $(DEB_REF); \
	elif [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ]; then \
		git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf -; \
	else \
		tar --exclude=./$(OUT) --exclude=./.git -cf - .; \
	fi | tar -xf - -C $(DEB_PARENT)/src
	set -e; t=$(DEB_PARENT)/src; \
	have=$$(sed -n 's/^#define VG_VERSION "\(.*\)"/\1/p' $$t/user/lib/version.h); \
	want='$(DEB_VERSION)'; want=$${want:-$$have}; \
	if [ "$$want" != "$$have" ]; then \
		sed -i "s/^#define VG_VERSION \".*\"/#define VG_VERSION \"$$want\"/" $$t/user/lib/version.h; \
		printf 'vpnguard-bpf (%s) unstable; urgency=medium\n\n  * make deb DEB_VERSION=%s: the tree of %s as version %s.\n\n -- %s  %s\n' \
			"$$want" "$$want" "$$have" "$$want" "$$(dpkg-parsechangelog -l $$t/debian/changelog -S Maintainer)" \
			"$$(dpkg-parsechangelog -l $$t/debian/changelog -S Date)" > $$t/debian/changelog.new; \
		mv $$t/debian/changelog.new $$t/debian/changelog; \
	fi; \
	(cd $$t && unset MAKEFLAGS MFLAGS MAKELEVEL && \
	 DEB_BUILD_OPTIONS="noddebs $$DEB_BUILD_OPTIONS" dpkg-buildpackage -us -uc -b -jauto); \
	mv $(DEB_PARENT)/*.deb $(DEB_PARENT)/*.buildinfo $(DEB_PARENT)/*.changes $(OUT)/deb/; \
	rm -rf $(DEB_PARENT); \
	ls -l $(OUT)/deb/vpnguard-bpf_$${want}_*.deb

deps:
	sh scripts/install-deps.sh

unit-test: $(UNIT_TESTS)
	sh tests/unit/run.sh $(UNIT_TESTS)

kernel-test: all
	bash tests/kernel/run.sh

test: deps
	$(MAKE) all
	bash tests/run.sh

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: deps
	$(MAKE) all $(OUT)/vgbench $(OUT)/vghelpers $(OUT)/vgproginfo $(OUT)/empty.bpf.o
	bash tests/bench/run.sh

# The binary, the service and slice, the daily report's service and timer, the logrotate file, the man pages,
# bash completion and a sample config (also as /etc/vpnguard/vpnguard.conf when there is none: never
# overwritten; the package's DESTDIR has none, so the .deb carries it as a conffile).
install: $(OUT)/vpnguard-bpf $(MAN_PAGES)
	install -D -m 0755 $< $(DESTDIR)$(SBINDIR)/vpnguard-bpf
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/vpnguard
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		scripts/dist/vpnguard.service.in > $(DESTDIR)$(UNITDIR)/vpnguard.service
	install -m 0644 scripts/dist/vpnguard.slice $(DESTDIR)$(UNITDIR)/vpnguard.slice
	# The daily report (vpnguard-report.timer): installed, not enabled.
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		scripts/dist/vpnguard-report.service.in > $(DESTDIR)$(UNITDIR)/vpnguard-report.service
	install -m 0644 scripts/dist/vpnguard-report.timer $(DESTDIR)$(UNITDIR)/vpnguard-report.timer
	install -D -m 0644 scripts/dist/vpnguard.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/vpnguard
	install -m 0644 scripts/dist/vpnguard.conf $(DESTDIR)$(DOCDIR)/vpnguard.conf.sample
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d $(DESTDIR)$(DOCDIR)/docs
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	install -D -m 0644 $(OUT)/man/vpnguard-bpf.8 $(DESTDIR)$(MANDIR)/man8/vpnguard-bpf.8
	install -D -m 0644 $(OUT)/man/vpnguard.conf.5 $(DESTDIR)$(MANDIR)/man5/vpnguard.conf.5
	install -D -m 0644 completion/vpnguard-bpf.bash $(DESTDIR)$(BASHCOMPDIR)/vpnguard-bpf
	[ -e $(DESTDIR)$(SYSCONFDIR)/vpnguard/vpnguard.conf ] || \
		install -m 0600 scripts/dist/vpnguard.conf $(DESTDIR)$(SYSCONFDIR)/vpnguard/vpnguard.conf

clean:
	rm -rf $(OUT)
include tests/fuzz/fuzz.mk

# The helper micro-benchmarks of `make bench` (tests/bench/helpers.*).
$(OUT)/helpers.bpf.o: tests/bench/helpers.bpf.c bpf/vpnguard.h bpf/vg_addr.h vmlinux/vmlinux.h | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/helpers.skel.h: $(OUT)/helpers.bpf.o
	$(BPFTOOL) gen skeleton $< name helpers_bpf > $@

$(OUT)/vghelpers: tests/bench/helpers.c $(OUT)/helpers.skel.h
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

# The programs' runs, times and sizes for make bench's programs table.
$(OUT)/vgproginfo: tests/bench/proginfo.c | $(OUT)
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

# compare_builds.py --floor: a program that allows everything at each of vpnguard's hooks.
$(OUT)/empty.bpf.o: tests/bench/empty.bpf.c vmlinux/vmlinux.h | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
