#!/usr/bin/env bash
# test/run.sh: the harness behind `make test`, `make demo` and `make bench`.
#
#   bash test/run.sh test    install what is missing, build, install, start a
#                            throwaway cluster, run every pg_regress and TAP test,
#                            print "N passed, N failed"
#   bash test/run.sh regress [names] / isolation [specs] / tap [t/file.pl ...]
#                            the same set-up, then only those tests
#   bash test/run.sh demo    the same set-up, then test/demo.sql
#   bash test/run.sh bench   the same set-up, then test/bench/bench.pl
#   bash test/run.sh test-all   `test` on PostgreSQL 15, 17 and 18 in turn, then
#                            the package tests (test/packages.sh test), one
#                            final "N passed, N failed" line over all of them
#   CITUS_SRC=DIR bash test/run.sh citus [test/citus/file.pl]
#                            build Citus from DIR (test/citus/build.sh, cached
#                            outside the tree), install it into the private
#                            copy too, run the Citus TAP suite (test/citus):
#                            a coordinator and two workers per test.  `test`
#                            runs it as well when CITUS_SRC is given, else it
#                            prints "skipped: CITUS_SRC not given".
#
# PG_MAJOR=17 (or 18, ...) chooses the PostgreSQL major (default: the host's
# pg_config, else 15).  A major installed on the host runs on the host; 17 and
# 18, when the host lacks them, run inside a Debian root file system made and
# cached by test/rootfs.sh (debootstrap; root only), with a copy of this tree.
#
# As root: missing Debian packages are installed (apt-get update first) and the
# servers run as the `postgres` OS user.  As another user with the packages
# present: no apt step.  The extension is installed into a private copy of
# PostgreSQL in a temporary directory (never into the system's); the cluster
# lives there too, listens only on a Unix socket there, on a free port, and is
# stopped on every exit.
set -euo pipefail

mode=${1:-test}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { printf '== %s\n' "$*" >&2; }

host_major() {
    local v
    v=$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p') || true
    echo "${v:-15}"
}
PGV=${PG_MAJOR:-${PGV:-$(host_major)}}
export PG_MAJOR=$PGV

# ---------- every major, one final count ----------
if [ "$mode" = test-all ]; then
    total_ok=0; total_bad=0; summary=()
    for m in ${CV_MAJORS:-15 17 18}; do
        log "PostgreSQL $m"
        set +e
        # the per-major count lines are renamed so that only the last line counts
        PG_MAJOR=$m bash "$0" test 2>&1 | sed -u 's/^\([0-9]* passed, [0-9]* failed\)$/== PostgreSQL '"$m"': \1/' \
            | tee "/tmp/customer_vault-test-all-$$-$m.out"
        set -e
        line=$(sed -n 's/^== PostgreSQL [0-9]*: \([0-9]* passed, [0-9]* failed\)$/\1/p' "/tmp/customer_vault-test-all-$$-$m.out" | tail -n 1)
        rm -f "/tmp/customer_vault-test-all-$$-$m.out"
        if [ -z "$line" ]; then
            # the run broke before it could count (build, packages): one failure
            line="0 passed, 1 failed"
        fi
        ok=${line%% passed*}; bad=${line#*, }; bad=${bad%% failed*}
        total_ok=$((total_ok + ok)); total_bad=$((total_bad + bad))
        summary+=("PostgreSQL $m: $line")
    done
    # the Debian packages and the dist zip (make test-packages; root only,
    # CV_PACKAGES=0 skips them)
    if [ "${CV_PACKAGES:-1}" != 0 ]; then
        log "the packages (make test-packages)"
        set +e
        bash test/packages.sh test 2>&1 | sed -u 's/^\([0-9]* passed, [0-9]* failed\)$/== packages: \1/' \
            | tee "/tmp/customer_vault-test-all-$$-packages.out"
        set -e
        line=$(sed -n 's/^== packages: \([0-9]* passed, [0-9]* failed\)$/\1/p' "/tmp/customer_vault-test-all-$$-packages.out" | tail -n 1)
        rm -f "/tmp/customer_vault-test-all-$$-packages.out"
        [ -n "$line" ] || line="0 passed, 1 failed"
        ok=${line%% passed*}; bad=${line#*, }; bad=${bad%% failed*}
        total_ok=$((total_ok + ok)); total_bad=$((total_bad + bad))
        summary+=("packages: $line")
    fi
    printf '== %s\n' "${summary[@]}"
    echo "$total_ok passed, $total_bad failed"
    [ "$total_bad" -eq 0 ]
    exit
fi

# ---------- a major the host lacks: inside a root file system ----------
if [ -z "${CV_IN_ROOTFS:-}" ] && [ ! -x "/usr/lib/postgresql/$PGV/bin/postgres" ] \
   && bash test/rootfs.sh release "$PGV" >/dev/null 2>&1; then
    log "PostgreSQL $PGV is not on this host: running inside a root file system"
    # a Citus source directory is mounted at /citus-src inside (rootfs.sh),
    # with the Citus build cache (the builds for this major live there too);
    # in a throwaway overlay of the root file system ("scratch"): Citus's
    # build dependencies, installed there by build.sh, leave the shared tree
    # as it was
    citus_src=
    how=(run "$PGV")
    if [ -n "${CITUS_SRC:-}" ]; then
        citus_src=$(cd "$CITUS_SRC" && pwd)
        export CV_CITUS_SRC=$citus_src CV_CITUS_CACHE=${CITUS_CACHE:-/var/cache/customer_vault/citus-build}
        citus_out=$(mktemp -d /tmp/customer_vault-citus-out.XXXXXX)
        how=(scratch "$PGV" "$citus_out")
    fi
    exec bash test/rootfs.sh "${how[@]}" env CV_IN_ROOTFS=1 PG_MAJOR="$PGV" \
        ${CV_SKIP_BUILD:+CV_SKIP_BUILD="$CV_SKIP_BUILD"} ${citus_src:+CITUS_SRC=/citus-src} \
        ${CITUS_BENCH:+CITUS_BENCH="$CITUS_BENCH"} ${CITUS_JOBS:+CITUS_JOBS="$CITUS_JOBS"} \
        ${BENCH_ROWS:+BENCH_ROWS="$BENCH_ROWS"} ${BENCH_REPS:+BENCH_REPS="$BENCH_REPS"} \
        bash /cv/test/run.sh "$@"
fi

# ---------- packages ----------
need_pkgs=(postgresql-$PGV postgresql-server-dev-$PGV postgresql-$PGV-cron
           libipc-run-perl libssl-dev make gcc perl)
ensure_packages() {
    local missing=() p
    for p in "${need_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages: ${missing[*]} (run as root, or install them)"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # the Debian packages create and start a default cluster: we neither need nor touch it
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
ensure_packages

SYSBIN=/usr/lib/postgresql/$PGV/bin
SYS_PG_CONFIG=$SYSBIN/pg_config

# ---------- run as the postgres OS user when root ----------
if [ "$(id -u)" -eq 0 ]; then
    RUNAS=(runuser -u postgres --)
    PGOSUSER=postgres
else
    RUNAS=()
    PGOSUSER=$(id -un)
fi

WORK=$(mktemp -d /tmp/customer_vault.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown "$PGOSUSER" "$WORK"
export CV_WORK=$WORK
trap 'rm -rf "$WORK"' EXIT INT TERM

# ---------- build, and install into a private copy of PostgreSQL ----------
# The system installation is never written: the server binaries and share
# directory are copied into $WORK/inst (PostgreSQL finds its share and lib
# directories relative to its binaries), and the extension is installed there
# with DESTDIR.  Several runs (and other projects) can so test side by side.
# CV_SKIP_BUILD=1 reuses the objects already built (for one TAP test or the
# bench while editing); `make test` always builds from clean.
if [ "${CV_SKIP_BUILD:-0}" != 1 ]; then
    log "building"
    make -s PG_CONFIG="$SYS_PG_CONFIG" clean >/dev/null
    build_log=$(mktemp)
    make PG_CONFIG="$SYS_PG_CONFIG" >"$build_log" 2>&1 || { cat "$build_log"; exit 1; }
    if grep -E "warning:" "$build_log"; then
        log "the build printed compiler warnings"
        exit 1
    fi
    rm -f "$build_log"
fi
INST=$WORK/inst
mkdir -p "$INST/usr/lib/postgresql" "$INST/usr/share/postgresql"
cp -a "/usr/lib/postgresql/$PGV" "$INST/usr/lib/postgresql/"
cp -a "/usr/share/postgresql/$PGV" "$INST/usr/share/postgresql/"
make -s PG_CONFIG="$SYS_PG_CONFIG" DESTDIR="$INST" install >/dev/null
if [ -n "${CITUS_SRC:-}" ] && { [ "$mode" = citus ] || [ "$mode" = bench-citus ] || [ "$mode" = test ]; }; then
    log "Citus from $CITUS_SRC (built once, cached)"
    citus_dest=$(bash test/citus/build.sh "$CITUS_SRC" "$SYS_PG_CONFIG")
    cp -a "$citus_dest"/. "$INST"/
fi

PGBIN=$INST/usr/lib/postgresql/$PGV/bin
PG_CONFIG=$PGBIN/pg_config
export PATH="$PGBIN:$PATH"

DATA=$WORK/data
started=0
cleanup() {
    local rc=$?
    if [ $started = 1 ]; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    # the nodes of TAP tests that were interrupted (their own END blocks did not run)
    local pid_file
    for pid_file in "$WORK"/tap/tmp_check/t_*_data/pgdata/postmaster.pid; do
        [ -f "$pid_file" ] || continue
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$(dirname "$pid_file")" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

free_port() {
    local p
    for p in $(seq 54320 54420 | shuf); do
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$p" ] \
           && [ ! -e "$WORK/.s.PGSQL.$p" ]; then
            echo "$p"; return 0
        fi
    done
    return 1
}
PORT=$(free_port)

# a fresh random root key, readable by the server user only
KEYFILE=$WORK/root.key
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$KEYFILE" )
[ "$(id -u)" -eq 0 ] && chown "$PGOSUSER" "$KEYFILE"
chmod 600 "$KEYFILE"

DBNAME=${CV_DBNAME:-contrib_regression}
[ "$mode" = demo ] && DBNAME=demo
[ "$mode" = bench ] && DBNAME=bench

log "starting a throwaway cluster in $WORK on port $PORT"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale -N >/dev/null
cat >> "$DATA/postgresql.conf" <<EOF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK'
shared_preload_libraries = 'pg_cron,customer_vault'
cron.database_name = '$DBNAME'
cron.host = '$WORK'
customer_vault.root_key_file = '$KEYFILE'
fsync = off
max_connections = 40
log_min_messages = warning
EOF
# glibc fills freed memory (MALLOC_PERTURB_): a use-after-free reads garbage, not stale data
"${RUNAS[@]}" env MALLOC_PERTURB_=165 "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null
started=1

export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
"$PGBIN/psql" -X -q -d postgres -c "CREATE DATABASE $DBNAME" >/dev/null

passed=0
failed=0
failures=()

# makefile_list VAR: the words of VAR in the Makefile (its "=" and "+=" lines)
makefile_list() {
    sed -n "s/^$1 *+\{0,1\}= *//p" Makefile | tr '\n' ' ' | sed 's/ *$//'
}

run_regress() {
    local pgxs_dir out
    pgxs_dir=$(dirname "$("$PG_CONFIG" --pgxs)")/..
    local tests
    tests=${CV_REGRESS_ONLY:-$(makefile_list REGRESS)}
    log "pg_regress: $tests"
    set +e
    out=$("$pgxs_dir/test/regress/pg_regress" --inputdir=test --outputdir=. \
          --bindir="$PGBIN" --host="$WORK" --port="$PORT" --user=postgres \
          --use-existing --dbname="$DBNAME" $tests 2>&1)
    set -e
    echo "$out"
    local ok bad
    # 15 prints "test x ... ok", 16+ TAP lines "ok 1 - x"; a test that ended
    # without a verdict (a missing expected file) counts as failed
    ok=$(grep -cE '\.\.\. ok|^ok ' <<<"$out" || true)
    bad=$(( $(wc -w <<<"$tests") - ok ))
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$bad" -gt 0 ]; then
        failures+=("pg_regress (see regression.diffs)")
        [ -f regression.diffs ] && head -c 20000 regression.diffs
        echo "---- $WORK/server.log (last 60 lines)"; tail -n 60 "$WORK/server.log" || true
    fi
}

# The isolation specs (test/specs) run in a database of their own (the purge
# acts on every table with a retention policy in its database).
run_isolation() {
    local pgxs_dir out tests ok bad
    pgxs_dir=$(dirname "$("$PG_CONFIG" --pgxs)")/..
    tests=${CV_ISOLATION_ONLY:-$(makefile_list ISOLATION)}
    [ -n "$tests" ] || return 0
    log "isolation: $tests"
    "$PGBIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS isolation_regression" \
        -c "CREATE DATABASE isolation_regression" >/dev/null
    set +e
    out=$("$pgxs_dir/test/isolation/pg_isolation_regress" --inputdir=test --outputdir=. \
          --bindir="$PGBIN" --host="$WORK" --port="$PORT" --user=postgres \
          --use-existing --dbname=isolation_regression $tests 2>&1)
    set -e
    echo "$out"
    ok=$(grep -cE '\.\.\. ok|^ok ' <<<"$out" || true)
    bad=$(( $(wc -w <<<"$tests") - ok ))
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$bad" -gt 0 ]; then
        failures+=("isolation (see regression.diffs)")
        [ -f regression.diffs ] && head -c 20000 regression.diffs
        echo "---- $WORK/server.log (last 60 lines)"; tail -n 60 "$WORK/server.log" || true
    fi
}

# The TAP tests run from a copy the server user can read, all in one prove -j2
# (two at a time), with absolute TESTDATADIR/TESTLOGDIR (what PostgreSQL 16+
# reads) and TESTDIR (what 15 reads), as prove_installcheck sets them.  On a
# failure, the failing test's regress_log_* and its nodes' server logs are
# printed before the work directory goes.
run_tap() {
    local pgxs_dir perl_dir tapdir files=() t out rc
    # the suite's directory under test/: t (default) or citus
    local suite=${CV_TAP_SUITE:-t}
    pgxs_dir=$(dirname "$("$PG_CONFIG" --pgxs)")/..
    perl_dir=$pgxs_dir/test/perl
    tapdir=$WORK/tap
    mkdir -p "$tapdir"
    cp -r test/t "$tapdir/"
    [ "$suite" = t ] || cp -r "test/$suite" "$tapdir/"
    [ "$(id -u)" -eq 0 ] && chown -R "$PGOSUSER" "$tapdir"
    for t in "$tapdir/$suite"/*.pl; do
        [ -e "$t" ] || continue
        if [ -n "${CV_TAP_ONLY:-}" ]; then
            # one or more files, space-separated
            local want=0 o
            for o in $CV_TAP_ONLY; do
                [ "$(basename "$t")" = "$(basename "$o")" ] && want=1
            done
            [ "$want" = 1 ] || continue
        fi
        files+=("$suite/$(basename "$t")")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    # the longest file (the 60 s soak) first, so the other prove job works
    # through the rest beside it instead of after it
    local ordered=() f
    for f in "${files[@]}"; do [[ $f == *soak* ]] && ordered+=("$f"); done
    for f in "${files[@]}"; do [[ $f == *soak* ]] || ordered+=("$f"); done
    files=("${ordered[@]}")
    log "TAP (prove -j${CV_PROVE_JOBS:-2}): ${files[*]}"
    set +e
    out=$(cd "$tapdir" && "${RUNAS[@]}" env PATH="$PATH" TESTDIR="$tapdir" \
        TESTDATADIR="$tapdir/tmp_check" TESTLOGDIR="$tapdir/tmp_check/log" \
        PG_REGRESS="$pgxs_dir/test/regress/pg_regress" PGHOST= PGPORT= PGUSER= CV_WORK="$WORK" \
        CITUS_BENCH="${CITUS_BENCH:-}" BENCH_ROWS="${BENCH_ROWS:-}" BENCH_REPS="${BENCH_REPS:-}" \
        prove --timer -j"${CV_PROVE_JOBS:-2}" -I "$perl_dir" -I "$tapdir/t" -I "$tapdir/$suite" "${files[@]}" 2>&1)
    rc=$?
    set -e
    echo "$out"
    # the files prove's summary lists as failed; everything else passed
    local bad=() f
    for f in "${files[@]}"; do
        if grep -qE "^$f +\(Wstat" <<<"$out" || ! grep -qE "^(\[[0-9:]+\] )?$f \.+ (ok|skipped)" <<<"$out"; then
            bad+=("$f")
        fi
    done
    [ $rc -ne 0 ] && [ ${#bad[@]} -eq 0 ] && bad=("prove")
    passed=$((passed + ${#files[@]} - ${#bad[@]}))
    failed=$((failed + ${#bad[@]}))
    for f in "${bad[@]}"; do
        local name=${f#*/}; name=${name%.pl}
        failures+=("TAP $f")
        for l in "$tapdir/tmp_check/log/regress_log_$name" "$tapdir/tmp_check/log/${name}"_*.log; do
            [ -f "$l" ] || continue
            echo "---- $l (last 60 lines)"; tail -n 60 "$l"
        done
    done
}

case "$mode" in
    test)
        log "unit: the pure-C core without a server (make unit)"
        if make -s PG_CONFIG="$SYS_PG_CONFIG" unit >"$WORK/unit.out" 2>&1; then
            passed=$((passed + 1)); tail -n 1 "$WORK/unit.out"
        else
            failed=$((failed + 1)); failures+=("unit (make unit)"); tail -n 40 "$WORK/unit.out"
        fi
        run_regress
        run_isolation
        run_tap
        if [ -n "${CITUS_SRC:-}" ]; then
            CV_TAP_SUITE=citus run_tap
        else
            log "citus: skipped: CITUS_SRC not given (make test-citus CITUS_SRC=<citus source directory>)"
        fi
        [ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    regress)
        # bash test/run.sh regress [test ...]: the pg_regress tests only (or those named)
        CV_REGRESS_ONLY="${*:2}" run_regress
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    isolation)
        # bash test/run.sh isolation [spec ...]: the isolation specs only (or those named)
        CV_ISOLATION_ONLY="${*:2}" run_isolation
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    tap)
        # bash test/run.sh tap [t/NNN_name.pl ...]: the TAP tests only (or those files)
        CV_TAP_ONLY="${*:2}" run_tap
        [ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    citus)
        # CITUS_SRC=DIR bash test/run.sh citus [test/citus/NNN_name.pl]
        if [ -z "${CITUS_SRC:-}" ]; then
            echo "citus: CITUS_SRC not given (a Citus source directory, e.g. a checkout of tag v13.2.2)" >&2
            exit 2
        fi
        CV_TAP_SUITE=citus CV_TAP_ONLY=${2:-} run_tap
        [ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    bench-citus)
        # CITUS_SRC=DIR bash test/run.sh bench-citus: the Citus bench section
        # (test/citus/900_bench.pl and 910_purge_bench.pl, or CITUS_BENCH_FILES;
        # BENCH_ROWS, BENCH_REPS), its table printed
        if [ -z "${CITUS_SRC:-}" ]; then
            echo "bench-citus: CITUS_SRC not given (a Citus source directory, e.g. a checkout of tag v13.2.2)" >&2
            exit 2
        fi
        CITUS_BENCH=1 CV_TAP_SUITE=citus CV_TAP_ONLY="${CITUS_BENCH_FILES:-900_bench.pl 910_purge_bench.pl}" run_tap
        [ -f "$WORK/citus-bench.txt" ] && cat "$WORK/citus-bench.txt"
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    demo)
        "$PGBIN/psql" -X -d "$DBNAME" -v ON_ERROR_STOP=1 -f test/demo.sql
        ;;
    bench)
        DBNAME="$DBNAME" perl test/bench/bench.pl
        ;;
    *)
        echo "usage: $0 test|test-all|regress [names]|isolation [specs]|tap [file]|citus [file]|bench-citus|demo|bench" >&2
        exit 2
        ;;
esac
