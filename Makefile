# customer_vault: PGXS build. The one version number lives in customer_vault.control.

EXTENSION  = customer_vault
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = customer_vault
OBJS = src/main.o src/guc.o src/labels.o src/envelope.o src/crypto.o src/keys.o \
       src/types.o src/columns.o src/protect.o src/consent.o src/scache.o src/blind.o src/maint.o src/brake.o \
       src/import.o src/mask.o src/citus.o \
       src/audit.o src/forget.o src/policycopy.o

# The install script of the current version and the upgrade scripts into it
# are assembled from sql/src (one file per concern) and sql/upgrade by
# sql/assemble.sh; every released version's scripts are committed, and the build
# refuses to assemble a committed script differently (bump the version first).
SQL_SRC     = $(sort $(wildcard sql/src/[0-9]*.sql))
SQL_INSTALL = sql/$(EXTENSION)--$(EXTVERSION).sql
SQL_UPGRADE = $(patsubst sql/upgrade/%,sql/$(EXTENSION)--%,$(wildcard sql/upgrade/*--$(EXTVERSION).sql))
DATA = $(sort $(wildcard sql/$(EXTENSION)--*.sql) $(SQL_INSTALL) $(SQL_UPGRADE))

PG_CPPFLAGS = -DCV_VERSION=\"$(EXTVERSION)\" -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK  = -lcrypto

# regression inputs in test/sql, outputs in expected/ (pg_regress looks in ./expected first)
REGRESS = install types crypto keys columns subjects consent retention evidence bad_arguments shred_retention privileges labels padding blind_index_oracle blind_index_review privilege_matrix maintenance no_crash row_context forged_ciphertext consent_policy consent_ledger upgrade bench_checks review2 import_consents masking
# types' soft input errors (expected/soft_errors_1.out: PostgreSQL 15, which has none)
REGRESS += soft_errors
# data-subject rights: the keyed subject hash, erasure with receipts
REGRESS += subject_hash
# the exfiltration brake and stale accounts (issue 13)
REGRESS += brake stale_roles
# erasure with receipts (part FORGET)
REGRESS += forget_subject
# erasure in C with kept statements, its findings (part FORGET2)
REGRESS += forget_findings
# mixed subject column types, foreign and FORCE RLS children, evidence_subjects (part FORGETFIX)
REGRESS += forget_mixed
# erasure skips the redaction when no evidence names the subject (part FORGETSPEED)
REGRESS += forget_speed
# hash chains independent of standard_conforming_strings
REGRESS += chain_settings
REGRESS += compliance_report privilege_drift privilege_drift_review
# the map of personal data (part MAP)
REGRESS += subject_map export_subject export_redacted ledger_redact_check export_inherit
# the decrypt audit (access_log, its worker and queue)
REGRESS += access_log
# masking review findings (part MASK2)
REGRESS += masking_review
REGRESS += masking_review2
# consent at scale: the subject bound, the shared cache's end dates (part SCALE)
REGRESS += consent_scale
# may_process's fast path per call site (part TEXTSUBJ)
REGRESS += consent_fastpath ledger_head_hint
# the consent policy event trigger copies and flips policies without parsing (part FIXDDL)
REGRESS += ddl_trigger_review
REGRESS += policy_copy_wholerow
# one protect trigger per table (part TRIGGER, issue 15)
REGRESS += protect_table protect_review
# erased history stays redacted when the subject comes back (part REDACT2)
REGRESS += ledger_privacy2
# cv_protect on every UPDATE (part TRIGGER3, issue 15)
REGRESS += protect_update
# part FORGET3 (issue 12)
REGRESS += forget_review
# every spelling of a subject compared in its column's type; inheritance children (part FORGET4)
REGRESS += forget_spellings forget_inherit
# no subject identifier left in the evidence logs (part LEDGER, issue 12)
REGRESS += ledger_privacy
# a kept statement never analysed again mid-walk; the walk's findings (part WALKFIX, issue 12)
REGRESS += walk_replan walk_findings walk_children
# the findings of review rev-forget (part FORGETREV)
REGRESS += forget_rev
# the owner switch and a citus.propagate_set_commands placeholder (review rev-audimp, HIGH)
REGRESS += citus_placeholder
# the ledger's checks cheap to prepare, its subject hash index a hash index (part GRANTIMPORT, issue 15)
REGRESS += ledger_checks
# grant_consent keeps the purposes it read within a transaction (part PERF)
REGRESS += grant_purpose_cache
# import_consents checks the purposes' foreign key once per batch (part GRANT, issue 15)
REGRESS += import_purpose_key
# maintenance, erasure and consent writes under pinned output settings: a purge under DateStyle 'SQL, DMY' (part CITUSREV)
REGRESS += datestyle_pin
# a foreign-key child whose key compares in a nondeterministic collation (review24 HIGH-1)
REGRESS += review24_fk_collation
# standard_conforming_strings and lc_monetary pinned for maintenance, erasure and consent writes (review24 HIGH-3)
REGRESS += review24_scs
# the owner's statements compare with the type's own equality only (review 24, HIGH-2)
REGRESS += review24_operator
# lookup()'s owner query (and the extension owner's statements) under a pinned search_path (review 24, MEDIUM-2)
REGRESS += review24_lookup_path
# session 26's review: the x86 vector base64 against PostgreSQL's own and a reference is_sealed
REGRESS += rev26_b64
# session 28's review: the per-table trigger's row buffer and context text; is_sealed against the type's input
REGRESS += rev28_outbuf rev28_textcheck
REGRESS_OPTS = --inputdir=test
# isolation specs in test/specs (races between sessions), outputs in expected/
ISOLATION = import_key_order consent_withdrawal consent_fastpath_sessions subject_keys purge_writers import_grant forget_hold forget_plan forget_review_rr walk_temp_child walk_inval grant_purpose_sessions rev26_import_inval
ISOLATION_OPTS = --inputdir=test --outputdir=.
# TAP tests in test/t (PGXS's prove_installcheck: TESTDIR on 15, absolute
# TESTDATADIR/TESTLOGDIR from 16), two at a time
TAP_TESTS   = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))
PROVE_FLAGS = -I test/t -j2

# `make installcheck REGRESS_SET=package`: only the tests that need nothing but
# an installed extension, a server preloading it and a root key (the Debian
# package's autopkgtest, the test of the `make dist` zip)
PACKAGE_REGRESS = install types crypto
ifeq ($(REGRESS_SET),package)
  REGRESS := $(PACKAGE_REGRESS)
  ISOLATION :=
  TAP_TESTS :=
endif

EXTRA_CLEAN = results regression.diffs regression.out test/bench/results/*.tmp \
              test/unit/test_core test/unit/test_core_san test/unit/test_core_portable test/unit/b64_guard \
              test/unit/b64_guard_noavx2 test/unit/b64_guard_portable test/unit/gcm_provider_choice test/unit/twogcm_prov.so

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

all: $(SQL_INSTALL) $(SQL_UPGRADE)

$(SQL_INSTALL): $(SQL_SRC) sql/assemble.sh $(EXTENSION).control
	bash sql/assemble.sh install $(EXTVERSION) > $@.tmp
	@bash sql/assemble.sh released $@ $@.tmp

sql/$(EXTENSION)--%--$(EXTVERSION).sql: sql/upgrade/%--$(EXTVERSION).sql $(SQL_SRC) sql/assemble.sh
	bash sql/assemble.sh upgrade $< > $@.tmp
	@bash sql/assemble.sh released $@ $@.tmp

# the pure-C core (envelope + crypto) tested without a server: known-answer
# vectors and a mutation loop, built plainly and under ASan/UBSan
UNIT_SRC    = test/unit/test_core.c src/envelope.c src/crypto.c
UNIT_DEPS   = $(UNIT_SRC) src/envelope.h src/crypto.h test/unit/b64_ref.h
UNIT_CC     = gcc
UNIT_CFLAGS = -std=gnu99 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Isrc

test/unit/test_core: $(UNIT_DEPS)
	$(UNIT_CC) $(UNIT_CFLAGS) -o $@ $(UNIT_SRC) -lcrypto

test/unit/test_core_san: $(UNIT_DEPS)
	$(UNIT_CC) $(UNIT_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ $(UNIT_SRC) -lcrypto

# the base64 code with guard pages after its source and destination (an
# over-read or over-write faults), against plain references (session 26's review)
B64_GUARD_DEPS = test/unit/b64_guard.c test/unit/b64_ref.h src/envelope.c src/envelope.h src/crypto.c src/crypto.h
test/unit/b64_guard: $(B64_GUARD_DEPS)
	$(UNIT_CC) -std=gnu99 -O2 -Isrc -Itest/unit -o $@ test/unit/b64_guard.c src/crypto.c -lcrypto

# the same where the CPU is said to lack AVX2 (the SSE2 path at every length
# from 16), and the portable code (REV28)
test/unit/b64_guard_noavx2: $(B64_GUARD_DEPS)
	$(UNIT_CC) -std=gnu99 -O2 -DB64_GUARD_NO_AVX2 -Isrc -Itest/unit -o $@ test/unit/b64_guard.c src/crypto.c -lcrypto

test/unit/b64_guard_portable: $(B64_GUARD_DEPS)
	$(UNIT_CC) -std=gnu99 -O2 -DCV_B64_PORTABLE -Isrc -Itest/unit -o $@ test/unit/b64_guard.c src/crypto.c -lcrypto

# the AES-256-GCM implementation crypto.c seals with is the one EVP selects by
# properties: a test provider registering it twice (fips=no, then fips=yes)
test/unit/twogcm_prov.so: test/unit/twogcm_prov.c
	$(UNIT_CC) $(UNIT_CFLAGS) -shared -fPIC -o $@ test/unit/twogcm_prov.c -lcrypto

test/unit/gcm_provider_choice: test/unit/gcm_provider_choice.c src/crypto.c src/crypto.h
	$(UNIT_CC) $(UNIT_CFLAGS) -o $@ test/unit/gcm_provider_choice.c src/crypto.c -lcrypto -ldl

# the same without the x86 vector code of base64 (what other machines run)
test/unit/test_core_portable: $(UNIT_DEPS)
	$(UNIT_CC) $(UNIT_CFLAGS) -DCV_B64_PORTABLE -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ $(UNIT_SRC) -lcrypto

.PHONY: test test-all test-citus bench-citus demo bench unit deb dist test-packages
unit: test/unit/test_core test/unit/test_core_san test/unit/test_core_portable test/unit/b64_guard \
      test/unit/b64_guard_noavx2 test/unit/b64_guard_portable test/unit/gcm_provider_choice test/unit/twogcm_prov.so
	test/unit/test_core
	test/unit/b64_guard
	test/unit/b64_guard_noavx2
	test/unit/b64_guard_portable
	test/unit/gcm_provider_choice $(CURDIR)/test/unit/twogcm_prov.so
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 test/unit/test_core_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 test/unit/test_core_portable

# set up a throwaway cluster as the postgres OS user, run every test, print
# "N passed, N failed"; PG_MAJOR=17 or 18 runs the same suite on that major
# (inside a cached Debian root file system when the host lacks it)
test:
	bash test/run.sh test

# the Citus suite (test/citus): Citus built from CITUS_SRC (a source directory,
# e.g. tag v13.2.2) into a cache outside the tree, a coordinator and two workers
test-citus:
	@test -n "$(CITUS_SRC)" || { echo "test-citus: give CITUS_SRC=<Citus source directory>" >&2; exit 2; }
	CITUS_SRC="$(abspath $(CITUS_SRC))" bash test/run.sh citus

# the Citus bench section (test/citus/900_bench.pl): consent policy count and
# distributed decrypt against a plain twin table; BENCH_ROWS (1000000), BENCH_REPS
bench-citus:
	@test -n "$(CITUS_SRC)" || { echo "bench-citus: give CITUS_SRC=<Citus source directory>" >&2; exit 2; }
	CITUS_SRC="$(abspath $(CITUS_SRC))" bash test/run.sh bench-citus

# the suite on PostgreSQL 15, 17 and 18, then the package tests (make
# test-packages), one "N passed, N failed" over all
test-all:
	bash test/run.sh test-all

# the quick start of README.md on a throwaway cluster
demo:
	bash test/run.sh demo

# side-by-side performance against plaintext and pgcrypto (BENCH_ROWS=...)
bench:
	bash test/run.sh bench

# Debian packages (debian/, pg_buildext): dpkg-buildpackage -us -uc -b on a copy
# of the tree, for the majors the host's postgresql-common supports
# (PG_SUPPORTED_VERSIONS=17 narrows them); the .deb, .buildinfo and .changes
# files go to DEB_OUT, then lintian runs when it is installed
DEB_OUT ?= $(CURDIR)/build/deb
deb:
	bash test/packages.sh deb "$(DEB_OUT)"

# the PGXN release: $(EXTENSION)-$(EXTVERSION).zip in DIST_OUT (git archive of
# HEAD, META.json checked against the control file, the current version's SQL
# scripts assembled into it)
DIST_OUT ?= $(CURDIR)/build
dist:
	bash test/packages.sh dist "$(DIST_OUT)"

# build, lintian, apt install, regression tests, apt purge of the packages of
# each major in a throwaway copy of a Debian root file system of the matching
# release (and, on 15, the dist zip built and installed from source); root only
test-packages:
	bash test/packages.sh test
