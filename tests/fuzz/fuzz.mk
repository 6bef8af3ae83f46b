# SPDX-License-Identifier: GPL-2.0
# libFuzzer targets, one per parser (tests/fuzz/fuzz_*.c), over the pure sources built again with
# clang's fuzzer, ASan and UBSan. `make fuzz` runs each for a minute; `make fuzz-smoke` runs each
# a few seconds over its corpus (tests/fuzz/corpus/NAME, regression cases included) and ends with
# "N passed, M failed". Needs clang and libclang-rt-14-dev (scripts/install-deps.sh).

FUZZ_CC      ?= clang
FUZZ_OUT     := $(OUT)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
                -Ibpf $(addprefix -Iuser/,$(USER_DIRS)) -Itests/fuzz
FUZZ_LIBS    := $(shell pkg-config --libs json-c inih 2>/dev/null || echo -ljson-c -linih)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(patsubst %,$(FUZZ_OUT)/fuzz_%,$(FUZZ_NAMES))
FUZZ_OBJS    := $(patsubst user/%.c,$(FUZZ_OUT)/%.o,$(PURE_SRCS))

.PHONY: fuzz fuzz-smoke fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_OUT):
	mkdir -p $@

$(FUZZ_OUT)/%.o: user/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(DEPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS) | $(FUZZ_OUT)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $< $(FUZZ_OBJS) $(FUZZ_LIBS) -o $@

fuzz: $(FUZZ_BINS)
	sh tests/fuzz/run.sh 60 $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	sh tests/fuzz/run.sh 3 $(FUZZ_BINS)

-include $(FUZZ_OBJS:.o=.d)
