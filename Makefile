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

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ivmlinux -Ibpf
CFLAGS     ?= -O2 -g
CFLAGS     += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Ibpf -I$(OUT) -Iuser
PKGS       := libbpf libmnl json-c
LDLIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lmnl -ljson-c) -lelf -lz

# Pure logic: no syscalls beyond libc, unit-tested without root.
PURE_SRCS  := user/args.c user/policy.c user/event_fmt.c
SYS_SRCS   := user/cgroup.c user/netns.c user/loader.c user/events.c user/status.c user/agent.c
USER_SRCS  := user/vpnguard.c $(PURE_SRCS) $(SYS_SRCS)
USER_OBJS  := $(patsubst user/%.c,$(OUT)/%.o,$(USER_SRCS))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUT)/%,$(wildcard tests/unit/test_*.c))

.PHONY: all bpf deps test unit-test kernel-test demo bench clean install
all: $(OUT)/vpnguard-bpf $(OUT)/vgprobe

bpf: $(OUT)/vpnguard.bpf.o

$(OUT):
	mkdir -p $@

$(OUT)/vpnguard.bpf.o: bpf/vpnguard.bpf.c bpf/vpnguard.h vmlinux/vmlinux.h | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/vpnguard.skel.h: $(OUT)/vpnguard.bpf.o
	$(BPFTOOL) gen skeleton $< name vpnguard_bpf > $@

$(OUT)/%.o: user/%.c $(wildcard user/*.h) bpf/vpnguard.h $(OUT)/vpnguard.skel.h | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/vpnguard-bpf: $(USER_OBJS)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/vgprobe: tests/tools/vgprobe.c | $(OUT)
	$(CC) -O2 -g -Wall -Wextra -Werror $< -o $@

$(OUT)/vgbench: tests/bench/vgbench.c | $(OUT)
	$(CC) -O2 -g -Wall -Wextra -Werror $< -o $@

$(OUT)/test_%: tests/unit/test_%.c $(patsubst user/%.c,$(OUT)/%.o,$(PURE_SRCS))
	$(CC) $(CFLAGS) $^ $(shell pkg-config --libs cmocka json-c 2>/dev/null || echo -lcmocka -ljson-c) -o $@

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
	$(MAKE) all $(OUT)/vgbench
	bash tests/bench/run.sh

install: $(OUT)/vpnguard-bpf
	install -D -m 0755 $< $(DESTDIR)$(PREFIX)/sbin/vpnguard-bpf

clean:
	rm -rf $(OUT)
