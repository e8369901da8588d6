# programs-cached: plain GNU make with pkg-config.
#
#   make                 build build/programs-cached (CPPFLAGS, CFLAGS and
#                        LDFLAGS from the environment, as dpkg-buildflags
#                        sets them, are honoured; WERROR=-Werror to fail
#                        on warnings)
#   make check           install missing Debian packages (as root), build
#                        with -Werror and DEBUG=1 and run every test
#   make check-asan      the same tests against an ASan+UBSan build
#   make check-tsan      the same tests against a ThreadSanitizer build
#                        (clang): the loop, the workers, the saver and
#                        the writer thread share data
#   make check-promtool  promtool check/test rules on contrib/prometheus
#   make check-deb       build the Debian package, lintian, unpack it into
#                        a throw-away root and run the binary from there
#   make check-systemd   boot systemd in a container (systemd-nspawn) and
#                        run the unit there: readiness, reload, watchdog,
#                        credentials, exit 2, journal fields
#   make check-image     build the OCI image (contrib/container) with podman
#                        on a base made by mmdebstrap, run and test it, and
#                        render the Tutor plugin (contrib/tutor); as root
#   make demo            run the daemon once against the sample catalogue
#                        (BACKEND=redis: into a throw-away redis-server)
#   make bench           the benchmark suite (bench/run.py, then bench-issues); writes BENCH.md
#   make bench-issues    only the benchmarks of single issues (bench/*.py)
#   make bench-quick     a small, fast run of it, into build/bench/
#   make bench-profile   callgrind of one 1,000-program refresh
#   make install         PREFIX=/usr/local DESTDIR= (binary, unit, man
#                        pages, example configuration); make uninstall
#   make man-events      rewrite programs-cached(8)'s list of events from
#                        the table in src/events.c

PROG	 = programs-cached
VERSION	 = 0.1.0

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR	?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR	?=

BUILD	?= build
CC	?= cc
PKG_CONFIG ?= pkg-config
PYTHON	?= /usr/bin/python3

PKGS	 = libcurl libevent jansson libmemcached inih libsodium nettle libxxhash \
	   hiredis libzstd

# The revision /metrics reports in programs_cached_build_info: the git
# checkout's, "unknown" in a tree that is not one (unless REVISION is set).
ifeq ($(origin REVISION),undefined)
REVISION := $(shell [ -e .git ] && git describe --always --dirty \
	    2>/dev/null || echo unknown)
endif

CFLAGS	?= -O2 -g
CPPFLAGS ?=
LDFLAGS	?=
# Warnings fail the build in make check, check-asan and CI, not in a
# package build with another compiler's new warnings.
WERROR	?=
# DEBUG=1 (make check and check-asan set it): cheap checks that stop the
# program, such as an event or field the table of events lacks (log.h).
DEBUG	?=
PCD_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) \
	  -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
	  -Wformat=2 -Wno-format-nonliteral \
	  -Iinclude -DPCD_VERSION='"$(VERSION)"' \
	  $(if $(filter 1,$(DEBUG)),-DPCD_DEBUG) $(PKG_CFLAGS) $(CPPFLAGS)
PCD_LIBS = $(PKG_LIBS) -lm -pthread
# Header dependencies, found by the compiler (build/**/*.d).
DEPFLAGS = -MMD -MP

# The packages' flags from pkg-config, asked only when something is
# compiled or linked (make check and make demo install the packages
# first), and once per make.  A package pkg-config cannot find stops the
# build, naming it.
pkg_missing = $(shell for p in $(PKGS); do \
	$(PKG_CONFIG) --exists $$p 2>/dev/null || echo $$p; done)
pkg_check = $(if $(shell command -v $(PKG_CONFIG)),,$(error \
	$(PKG_CONFIG) is not installed: run tools/deps.sh build (as root)))$(if \
	$(pkg_missing),$(error pkg-config cannot find $(pkg_missing) (no \
	.pc file): install the build packages with tools/deps.sh build (as \
	root), which make check and make demo run first))
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(pkg_check)$$(shell $$(PKG_CONFIG) \
	--cflags $$(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(pkg_check)$$(shell $$(PKG_CONFIG) \
	--libs $$(PKGS)))$(PKG_LIBS)

ifeq ($(SAN),1)
CFLAGS	 = -O1 -g -fno-omit-frame-pointer
PCD_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
endif
# ThreadSanitizer: Debian's clang (libclang-rt-14-dev has its runtime).
ifeq ($(SAN),thread)
CC	 = $(CLANG)
CFLAGS	 = -O1 -g -fno-omit-frame-pointer
PCD_CFLAGS := $(filter-out -Wformat=2,$(PCD_CFLAGS)) -fsanitize=thread
LDFLAGS	+= -fsanitize=thread
endif

SRCS	 = $(wildcard src/*.c)
OBJS	 = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIBOBJS	 = $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)
TOOL_SRCS = $(wildcard tests/tools/*.c)
TOOL_BINS = $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/%)
FUZZ_TARGETS = detail pickle keys config mcwatch
FUZZ_SECONDS ?= 60
CLANG	?= clang
BENCH_SRCS = $(wildcard bench/*.c)
BENCH_BINS = $(BENCH_SRCS:bench/%.c=$(BUILD)/bench-%)
BENCH_FLAGS ?=
BACKEND	?= memcached

.PHONY: all deps check check-unit check-integration check-asan check-tsan demo \
	install uninstall clean fuzz check-fuzz lint check-valgrind \
	bench bench-issues bench-quick bench-profile bench-bins check-deb check-systemd \
	check-promtool check-image man-events lint-deps FORCE

all: $(BUILD)/$(PROG)

# The compiler and every flag, recorded: the file is rewritten only when
# they change, and everything compiled depends on it, so that a change
# (make, then make check with -Werror) rebuilds everything.
$(BUILD)/flags: export PCD_FLAGS_USED = $(CC) $(PCD_CFLAGS) $(CFLAGS) \
	$(LDFLAGS) $(PCD_LIBS)
$(BUILD)/flags: FORCE | $(BUILD)/obj
	@printf '%s\n' "$$PCD_FLAGS_USED" | cmp -s - $@ || \
	    printf '%s\n' "$$PCD_FLAGS_USED" >$@

$(BUILD)/obj/%.o: src/%.c $(BUILD)/flags | $(BUILD)/obj
	$(CC) $(PCD_CFLAGS) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/obj:
	mkdir -p $@

# metrics.c names the revision; rebuilt when it changes (the stamp is
# rewritten only then).
$(BUILD)/obj/metrics.o: PCD_CFLAGS += -DPCD_REVISION='"$(REVISION)"'
$(BUILD)/obj/metrics.o: $(BUILD)/revision
$(BUILD)/revision: FORCE | $(BUILD)/obj
	@echo '$(REVISION)' | cmp -s - $@ || echo '$(REVISION)' >$@
FORCE:

$(BUILD)/libpcd.a: $(LIBOBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/$(PROG): $(BUILD)/obj/main.o $(BUILD)/libpcd.a $(BUILD)/flags
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BUILD)/obj/main.o \
	    $(BUILD)/libpcd.a $(PCD_LIBS)

# A program of one source file and the library: tests, tools, benchmarks
# (its header dependencies in $@.d).
LINK_ONE = $(CC) $(PCD_CFLAGS) $(CFLAGS) $(LDFLAGS) $(DEPFLAGS) -MF $@.d \
	-MT $@ -o $@ $< $(filter %.o,$^) $(BUILD)/libpcd.a $(PCD_LIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(BUILD)/libpcd.a $(BUILD)/flags
	$(LINK_ONE) -Itests/unit

$(BUILD)/%: tests/tools/%.c $(BUILD)/libpcd.a $(BUILD)/flags
	$(LINK_ONE)

$(BUILD)/print-events: tools/print-events.c $(BUILD)/libpcd.a $(BUILD)/flags
	$(LINK_ONE)

# The man page's list of events, from the table (src/events.c).
man-events: $(BUILD)/print-events
	$(BUILD)/print-events | $(PYTHON) tools/man-events.py

# The fuzz targets' entry points, replayed over the corpus and the inputs
# that once failed (tests/fuzz/regress) by a plain driver: part of check.
$(BUILD)/replay_%: tests/fuzz/fuzz_%.c $(BUILD)/obj/fuzz-driver.o \
    $(BUILD)/libpcd.a $(BUILD)/flags
	$(LINK_ONE)

$(BUILD)/obj/fuzz-driver.o: tests/fuzz/driver.c $(BUILD)/flags | $(BUILD)/obj
	$(CC) $(PCD_CFLAGS) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/*.d)

check-fuzz: $(FUZZ_TARGETS:%=$(BUILD)/replay_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	    $(BUILD)/replay_$$t $$(find tests/fuzz/corpus/$$t \
	    tests/fuzz/regress/$$t -type f 2>/dev/null | sort); done

# libFuzzer (clang) with ASan and UBSan, each target for FUZZ_SECONDS,
# from a copy of the committed seeds; crashes land in build/fuzz/crashes.
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(filter-out src/main.c,$(SRCS)) \
    $(wildcard include/*.h)
	@mkdir -p build/fuzz
	$(CLANG) $(filter-out -Wformat=2,$(PCD_CFLAGS)) -g -O1 \
	    -fsanitize=fuzzer,address,undefined -o $@ $< \
	    $(filter-out src/main.c,$(SRCS)) $(PCD_LIBS)

fuzz:
	@tools/deps.sh fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	    $(MAKE) --no-print-directory build/fuzz/fuzz_$$t; \
	    mkdir -p build/fuzz/corpus/$$t build/fuzz/crashes; \
	    cp -n tests/fuzz/corpus/$$t/* build/fuzz/corpus/$$t/ 2>/dev/null || true; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/crashes/$$t- build/fuzz/corpus/$$t; \
	done

# Static analysis: cppcheck, and clang-tidy with the checked-in
# .clang-tidy (every finding is an error).
lint: lint-deps
	cppcheck -q --enable=warning,performance,portability --std=c11 \
	    --error-exitcode=1 --inline-suppr -Iinclude -D_GNU_SOURCE \
	    -DPCD_VERSION='"$(VERSION)"' src tests/unit tests/tools tests/fuzz
	printf '%s\n' $(SRCS) | xargs -P2 -n4 sh -c 'clang-tidy -quiet "$$@" \
	    -- -std=c11 -D_GNU_SOURCE -Iinclude -DPCD_VERSION=\"$(VERSION)\" \
	    $(PKG_CFLAGS)' clang-tidy

# Before lint's recipe, which asks pkg-config.
lint-deps:
	@tools/deps.sh lint

$(BUILD)/bench-%: bench/%.c $(BUILD)/libpcd.a $(BUILD)/flags
	$(LINK_ONE)

deps:
	@tools/deps.sh test

check: deps
	$(MAKE) WERROR=-Werror DEBUG=1 check-unit check-integration \
	    check-promtool

# The alerting rules: syntax, and promtool's unit tests of them (the
# /metrics page itself is checked in tests/integration/test_ops.py).
check-promtool:
	@if command -v promtool >/dev/null; then \
	    promtool check rules contrib/prometheus/alerts.yml && \
	    cd contrib/prometheus && promtool test rules alerts_test.yml; \
	else echo "check-promtool: skipped: no promtool" \
	    "(apt-get install prometheus)"; fi

check-unit: $(UNIT_BINS) $(TOOL_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	@$(MAKE) --no-print-directory check-fuzz

# The integration modules, TEST_JOBS at a time (tools/runtests.py: they
# mostly wait on daemons and timers); ITESTS names a subset (test_lease ...).
TEST_JOBS	?= 3
check-integration: $(BUILD)/$(PROG) $(TOOL_BINS)
	PCD_BUILD=$(BUILD) $(PYTHON) tools/runtests.py -j $(TEST_JOBS) \
	    $(foreach f,$(TESTFLAGS),--flag=$(f)) $(ITESTS)

# Full refreshes under valgrind (slow: not in check; .ci/run runs it).
check-valgrind: deps $(BUILD)/$(PROG)
	@tools/deps.sh bench
	PCD_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/valgrind \
	    -t . $(TESTFLAGS)

check-asan: deps
	$(MAKE) BUILD=build/asan SAN=1 WERROR=-Werror DEBUG=1 check-unit \
	    check-integration

# Every report stops the process (exit 66), and the harness fails a test
# whose daemon printed one.
check-tsan: deps
	@tools/deps.sh fuzz
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
	    $(MAKE) BUILD=build/tsan SAN=thread WERROR=-Werror check-unit \
	    check-integration

# The Debian package, built from a copy of the tree into build/deb.
check-deb:
	@tools/deps.sh deb
	REVISION=$(REVISION) tests/deb/check-deb.sh $(BUILD)/deb

# The unit under a real systemd in a container (needs root and
# systemd-nspawn; skips, saying why, where they are missing).
check-systemd: deps $(BUILD)/$(PROG)
	@tools/deps.sh systemd
	tests/systemd/check-systemd.sh $(BUILD)

# The image, from a copy of the tree into build/image, tested by podman
# runs beside memcached, redis-server and the fake Discovery.
check-image: deps $(BUILD)/$(PROG)
	@tools/deps.sh image
	tests/image/check-image.sh $(BUILD)/image $(VERSION) $(BUILD)

demo: deps
	$(MAKE) $(BUILD)/$(PROG)
	PCD_BUILD=$(BUILD) BACKEND=$(BACKEND) $(PYTHON) tools/demo.py

bench-bins: $(BUILD)/$(PROG) $(BENCH_BINS)

bench:
	@tools/deps.sh bench
	$(MAKE) bench-bins
	PCD_BUILD=$(BUILD) PCD_CFLAGS_USED="$(CFLAGS)" \
	    PCD_BENCH_FLAGS="$(BENCH_FLAGS)" $(PYTHON) bench/run.py $(BENCH_FLAGS)
	$(MAKE) bench-issues

# The benchmarks of single issues, after run.py: those that keep a section
# of BENCH.md between their own markers write it; the others print their
# tables, kept in build/bench/NAME.txt.
BENCH_SECTIONS	 = incremental change snapshot
BENCH_PRINTED	 = lease reader_watch reader_repair heal_republish
bench-issues: bench-bins
	set -e; for b in $(BENCH_SECTIONS); do \
	    PCD_BUILD=$(BUILD) $(PYTHON) bench/$$b.py; done
	set -e; mkdir -p $(BUILD)/bench; for b in $(BENCH_PRINTED); do \
	    PCD_BUILD=$(BUILD) $(PYTHON) bench/$$b.py | tee $(BUILD)/bench/$$b.txt; done

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

# The unit and the man pages name the default paths; installed, they name
# the ones given here.
SUBST	 = sed -e 's|/usr/local/sbin/$(PROG)|$(SBINDIR)/$(PROG)|g' \
	       -e 's|/etc/$(PROG)|$(SYSCONFDIR)/$(PROG)|g'

install: $(BUILD)/$(PROG)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/$(PROG) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BUILD)/$(PROG) $(DESTDIR)$(SBINDIR)/$(PROG)
	install -m 644 conf/$(PROG).conf \
	    $(DESTDIR)$(SYSCONFDIR)/$(PROG)/$(PROG).conf.example
	$(SUBST) systemd/$(PROG).service \
	    >$(DESTDIR)$(SYSTEMDUNITDIR)/$(PROG).service
	$(SUBST) man/$(PROG).8 >$(DESTDIR)$(MANDIR)/man8/$(PROG).8
	$(SUBST) man/$(PROG).conf.5 >$(DESTDIR)$(MANDIR)/man5/$(PROG).conf.5
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$(PROG).service \
	    $(DESTDIR)$(MANDIR)/man8/$(PROG).8 \
	    $(DESTDIR)$(MANDIR)/man5/$(PROG).conf.5

# The operator's configuration and secret stay, and so does their directory.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/$(PROG) \
	    $(DESTDIR)$(SYSCONFDIR)/$(PROG)/$(PROG).conf.example \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/$(PROG).service \
	    $(DESTDIR)$(MANDIR)/man8/$(PROG).8 \
	    $(DESTDIR)$(MANDIR)/man5/$(PROG).conf.5
	rmdir $(DESTDIR)$(SYSCONFDIR)/$(PROG) 2>/dev/null || true

clean:
	rm -rf build
