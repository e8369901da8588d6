# programs-cached: plain GNU make with pkg-config.
#
#   make                 build build/programs-cached
#   make check           install missing Debian packages (as root), build
#                        with -Werror and run every test
#   make check-asan      the same tests against an ASan+UBSan build
#   make demo            run the daemon once against the sample catalogue
#   make bench           the benchmark suite (bench/run.py); writes BENCH.md
#   make bench-quick     a small, fast run of it, into build/bench/
#   make bench-profile   callgrind of one 1,000-program refresh
#   make install         PREFIX=/usr/local DESTDIR=

PROG	 = programs-cached
VERSION	 = 0.1.0

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DESTDIR	?=

BUILD	?= build
CC	?= cc
PKG_CONFIG ?= pkg-config
PYTHON	?= /usr/bin/python3

PKGS	 = libcurl libevent jansson libmemcached inih libsodium nettle

CFLAGS	?= -O2 -g
PCD_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	  -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
	  -Wformat=2 -Wno-format-nonliteral \
	  -Iinclude -DPCD_VERSION='"$(VERSION)"' \
	  $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PCD_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lm

ifeq ($(SAN),1)
CFLAGS	 = -O1 -g -fno-omit-frame-pointer
PCD_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
endif

SRCS	 = $(wildcard src/*.c)
OBJS	 = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIBOBJS	 = $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)
TOOL_SRCS = $(wildcard tests/tools/*.c)
TOOL_BINS = $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/%)
BENCH_SRCS = $(wildcard bench/*.c)
BENCH_BINS = $(BENCH_SRCS:bench/%.c=$(BUILD)/bench-%)
BENCH_FLAGS ?=

.PHONY: all deps check check-unit check-integration check-asan demo \
	bench bench-quick bench-profile bench-bins install uninstall clean

all: $(BUILD)/$(PROG)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(PCD_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj:
	mkdir -p $@

$(BUILD)/libpcd.a: $(LIBOBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/$(PROG): $(BUILD)/obj/main.o $(BUILD)/libpcd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PCD_LIBS)

$(BUILD)/test_%: tests/unit/test_%.c tests/unit/t.h $(BUILD)/libpcd.a
	$(CC) $(PCD_CFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libpcd.a $(PCD_LIBS)

$(BUILD)/%: tests/tools/%.c $(BUILD)/libpcd.a
	$(CC) $(PCD_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libpcd.a $(PCD_LIBS)

$(BUILD)/bench-%: bench/%.c $(BUILD)/libpcd.a
	$(CC) $(PCD_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libpcd.a $(PCD_LIBS)

deps:
	@tools/deps.sh test

check: deps
	$(MAKE) check-unit check-integration

check-unit: $(UNIT_BINS) $(TOOL_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

check-integration: $(BUILD)/$(PROG) $(TOOL_BINS)
	PCD_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/integration -t . $(TESTFLAGS)

check-asan: deps
	$(MAKE) BUILD=build/asan SAN=1 check-unit check-integration

demo: deps
	$(MAKE) $(BUILD)/$(PROG)
	PCD_BUILD=$(BUILD) $(PYTHON) tools/demo.py

bench-bins: $(BUILD)/$(PROG) $(BENCH_BINS)

bench:
	@tools/deps.sh bench
	$(MAKE) bench-bins
	PCD_BUILD=$(BUILD) PCD_CFLAGS_USED="$(CFLAGS)" \
	    PCD_BENCH_FLAGS="$(BENCH_FLAGS)" $(PYTHON) bench/run.py $(BENCH_FLAGS)

bench-quick:
	@tools/deps.sh bench
	$(MAKE) bench-bins
	PCD_BUILD=$(BUILD) PCD_CFLAGS_USED="$(CFLAGS)" \
	    PCD_BENCH_FLAGS="$(BENCH_FLAGS)" $(PYTHON) bench/run.py --quick \
	    $(BENCH_FLAGS)

bench-profile:
	@tools/deps.sh bench
	$(MAKE) bench-bins
	PCD_BUILD=$(BUILD) $(PYTHON) bench/run.py --profile $(BENCH_FLAGS)

install: $(BUILD)/$(PROG)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 755 $(BUILD)/$(PROG) $(DESTDIR)$(SBINDIR)/$(PROG)
	install -d $(DESTDIR)$(SYSCONFDIR)/$(PROG)
	install -m 644 conf/$(PROG).conf $(DESTDIR)$(SYSCONFDIR)/$(PROG)/$(PROG).conf.example

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/$(PROG)
	rm -f $(DESTDIR)$(SYSCONFDIR)/$(PROG)/$(PROG).conf.example

clean:
	rm -rf build
