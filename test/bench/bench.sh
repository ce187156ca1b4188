#!/usr/bin/env bash
# test/bench/bench.sh: customer_vault against plaintext and pgcrypto, measured
# side by side in one run (issue 6).
#
# Run through the harness, which starts a throwaway cluster with the extension
# preloaded and a root key, and exports PGHOST/PGPORT/PGUSER and DBNAME:
#
#   make bench                                    (BENCH_ROWS=1000000)
#   CV_SKIP_BUILD=1 BENCH_ROWS=20000 bash test/run.sh bench
#
# Settings (environment):
#   BENCH_ROWS=1000000     customer rows per table
#   BENCH_REPS=3           repetitions; every figure is the median of them
#   BENCH_SCALING=1        run 10^4, 10^5 and 10^6 rows and show the growth
#                          (BENCH_SCALING_SIZES="..." to choose other sizes)
#   BENCH_PGP_ROWS=5000    pgp_sym_encrypt/decrypt run on at most this many rows
#                          (string-to-key hashing makes them ~0.5 ms a value);
#                          their totals are scaled per row to BENCH_ROWS
#   BENCH_SUBJECT_ROWS=20000  the same for encrypt_for_subject (a new key per row)
#   BENCH_LOOKUPS=2000     equality lookups per measurement
#   BENCH_CONSENT_CACHE=n  customer_vault.consent_cache_size for the consent
#                          counts (default: the server's, raised to BENCH_ROWS
#                          when smaller; below the live consents of a purpose
#                          it measures the index-probe fallback)
#   BENCH_SECTIONS="insert read lookup consent purge rotation"
#                          the sections to run (default all; read, lookup and
#                          rotation need the tables insert fills and bring it in)
#   BENCH_PURGE_RATE=100   single-row INSERTs per second of the concurrent
#                          writer (pgbench -R) during the purge and the DELETE
#   BENCH_SMOKE=1          `make test`: tiny run, CSV to a temporary directory
#
# It prints one table and writes it as CSV to test/bench/results/bench-<UTC
# timestamp>.csv.  Any SQL error, and any result that does not check out
# (row counts, sums of decrypted lengths, lookups, re-encrypted key versions,
# the rows visible under the consent policies, the consent ledger, the rows
# left by the purge and the DELETE, purge_log), ends it with a non-zero status,
# so the smoke run in `make test` keeps it working.  Times are taken inside the
# server with clock_timestamp() around the statement (bench.time_sql; in the
# session for CALLs, which cannot run inside a function), so connection set-up
# and result transfer are not counted; inserts commit right after (fsync is off
# in the harness).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DB=${DBNAME:?DBNAME must be set (run through test/run.sh bench)}
ROWS=${BENCH_ROWS:-1000000}
REPS=${BENCH_REPS:-3}
SMOKE=${BENCH_SMOKE:-0}
SCALING=${BENCH_SCALING:-0}
PGP_MAX=${BENCH_PGP_ROWS:-5000}
SUBJ_MAX=${BENCH_SUBJECT_ROWS:-20000}
LOOKUPS=${BENCH_LOOKUPS:-2000}
CONSENT_CACHE=${BENCH_CONSENT_CACHE:-}
PURGE_RATE=${BENCH_PURGE_RATE:-100}
[ "$SMOKE" = 1 ] && LOOKUPS=${BENCH_LOOKUPS:-200}

# the sections to run; read, lookup and rotation work on the insert tables
ALL_SECTIONS="insert read lookup consent purge rotation"
declare -A WANT
sections=${BENCH_SECTIONS:-$ALL_SECTIONS}
for sec in ${sections//,/ }; do
    [[ " $ALL_SECTIONS " == *" $sec "* ]] ||
        { echo "bench: unknown section '$sec' in BENCH_SECTIONS (sections: $ALL_SECTIONS)" >&2; exit 2; }
    WANT[$sec]=1
done
[ ${#WANT[@]} -gt 0 ] || { echo "bench: BENCH_SECTIONS names no section" >&2; exit 2; }
[ -n "${WANT[read]:-}${WANT[lookup]:-}${WANT[rotation]:-}" ] && WANT[insert]=1
want() { [ -n "${WANT[$1]:-}" ]; }

[ -n "$CONSENT_CACHE" ] && [[ ! $CONSENT_CACHE =~ ^[0-9]+$ ]] &&
    { echo "bench: BENCH_CONSENT_CACHE must be a non-negative integer (got '$CONSENT_CACHE')" >&2; exit 2; }
for v in ROWS REPS PGP_MAX SUBJ_MAX LOOKUPS PURGE_RATE; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "bench: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done

# same plans for every method, one CPU each: no JIT, no parallel query
export PGOPTIONS="-c jit=off -c max_parallel_workers_per_gather=0 ${PGOPTIONS:-}"

tmp=$(mktemp -d "${CV_WORK:-/tmp}/bench.XXXXXX")
WRITER_PID=""  # the concurrent writer of the purge section (pgbench), while it runs
trap '[ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null; rm -rf "$tmp"' EXIT

if [ "$SMOKE" = 1 ]; then
    outdir=$tmp
else
    outdir=$here/results
    mkdir -p "$outdir"
fi
CSV=$outdir/bench-$(date -u +%Y%m%dT%H%M%SZ).csv
echo "n_rows,reps,section,operation,median_s,samples_s,per_unit_us,overhead_us,ratio,target,result,note" > "$CSV"

log() { printf '.. %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# floating point helpers
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
fmt() { # fmt VALUE [DECIMALS]
    [ -z "$1" ] && { printf -- '-'; return; }
    awk -v x="$1" -v d="${2:-2}" 'BEGIN { printf "%.*f", d, x }'
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
median() {
    # shellcheck disable=SC2086  # the samples are split on purpose
    printf '%s\n' $1 | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.6f", a[(NR + 1) / 2]; else printf "%.6f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

largest() {
    # shellcheck disable=SC2086  # the samples are split on purpose
    printf '%s\n' $1 | sort -g | tail -n 1
}

# ---------------------------------------------------------------- floor
floor_bin=$tmp/aead_floor
cc -O2 -Wall -o "$floor_bin" "$here/aead_floor.c" -lcrypto || die "could not compile aead_floor.c"
declare -A FLOOR_SEAL FLOOR_OPEN
measure_floor() {
    local iters=200000 size seal open
    [ "$SMOKE" = 1 ] && iters=20000
    while read -r size seal open _; do
        FLOOR_SEAL[$size]=$(calc "$seal / 1000")
        FLOOR_OPEN[$size]=$(calc "$open / 1000")
    done < <("$floor_bin" "$iters" 25 12 200)
    [ -n "${FLOOR_OPEN[200]:-}" ] || die "aead_floor printed nothing"
}

# ---------------------------------------------------------------- set-up
setup_extension() {
    sql >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS customer_vault CASCADE;
SELECT customer_vault.create_key('bench', 'benchmark key')
 WHERE NOT EXISTS (SELECT 1 FROM customer_vault.keys WHERE name = 'bench');
SQL
    # a throwaway cluster: keep WAL-triggered checkpoints out of the timings
    if [ -n "${CV_WORK:-}" ]; then
        sql -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null
    fi
}

# the benchmark schema for n rows: source data, helpers, empty target tables
setup_schema() {
    local n=$1
    sql -v n="$n" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
-- protect_column's registry keeps rows of dropped tables: forget ours
DELETE FROM customer_vault.protected_columns WHERE schema_name = 'bench';
CREATE SCHEMA bench;

-- realistic customer rows: email 25 bytes, phone 12, notes 200, created_at
CREATE FUNCTION bench.email(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'cust.' || lpad(id::text, 8, '0') || '@example.com' $$;
CREATE FUNCTION bench.phone(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '+1' || lpad(((id * 7919 + 2015550000) % 10000000000)::text, 10, '0') $$;
CREATE FUNCTION bench.notes(id bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT left('Customer notes: ' || md5(id::text) || ' ' || md5(id::text || 'a') || ' '
                || md5(id::text || 'b') || ' ' || md5(id::text || 'c') || ' '
                || md5(id::text || 'd') || ' ' || md5(id::text || 'e') || ' ' || md5(id::text || 'f'), 200) $$;

-- the pgcrypto keys: literals, as a benchmark may
CREATE FUNCTION bench.raw_key() RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea $$;
CREATE FUNCTION bench.pgp_pass() RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'bench passphrase'::text $$;

-- seconds a statement takes inside the server, and its result (row count or value)
CREATE FUNCTION bench.time_sql(stmt text, OUT secs float8, OUT result text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    n bigint;
BEGIN
    IF stmt ~* '^\s*(select|with)\M' THEN
        t0 := clock_timestamp();
        EXECUTE stmt INTO result;
        secs := extract(epoch FROM clock_timestamp() - t0);
    ELSE
        t0 := clock_timestamp();
        EXECUTE stmt;
        GET DIAGNOSTICS n = ROW_COUNT;
        secs := extract(epoch FROM clock_timestamp() - t0);
        result := n::text;
    END IF;
END
$$;

-- n equality lookups of random customers by email, one statement each
-- (plpgsql caches the plans, as a prepared statement of an application would)
CREATE FUNCTION bench.lookup(kind text, n integer, nrows bigint, seed float8, warm boolean,
                             OUT secs float8, OUT nfound bigint)
LANGUAGE plpgsql AS $$
DECLARE
    emails text[];
    e text;
    t0 timestamptz;
    r_id bigint;
    r_email text;
    r_phone text;
    r_notes text;
    f bigint := 0;
BEGIN
    PERFORM setseed(seed);
    emails := ARRAY(SELECT bench.email(1 + floor(random() * nrows)::bigint) FROM generate_series(1, n));
    IF warm THEN
        -- the same lookups once untimed: plans cached, key loaded, and the
        -- pages they touch in shared buffers, so every kind is measured warm
        PERFORM bench.lookup(kind, n, nrows, seed, false);
    END IF;
    t0 := clock_timestamp();
    IF kind = 'plain' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id INTO r_id FROM bench.t_plain_ix t WHERE t.email = e;
            IF FOUND THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'bidx' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id INTO r_id FROM bench.t_prot_bidx t
             WHERE t.email_bidx = customer_vault.column_blind_index('bench.t_prot_bidx', 'email', e);
            IF FOUND THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'plain_row' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id, t.email, t.phone, t.notes INTO r_id, r_email, r_phone, r_notes
              FROM bench.t_plain_ix t WHERE t.email = e;
            IF FOUND AND r_email = e AND r_phone = bench.phone(r_id) THEN f := f + 1; END IF;
        END LOOP;
    ELSIF kind = 'view_row' THEN
        FOREACH e IN ARRAY emails LOOP
            SELECT t.id, t.email, t.phone, t.notes INTO r_id, r_email, r_phone, r_notes
              FROM bench.t_prot_bidx_decrypted t
             WHERE t.email_bidx = customer_vault.column_blind_index('bench.t_prot_bidx', 'email', e);
            IF FOUND AND r_email = e AND r_phone = bench.phone(r_id) THEN f := f + 1; END IF;
        END LOOP;
    ELSE
        RAISE EXCEPTION 'unknown lookup kind %', kind;
    END IF;
    secs := extract(epoch FROM clock_timestamp() - t0);
    nfound := f;
END
$$;

CREATE TABLE bench.src WITH (autovacuum_enabled = false) AS
SELECT g::bigint AS id, bench.email(g) AS email, bench.phone(g) AS phone, bench.notes(g) AS notes,
       timestamptz '2024-01-01 00:00+00' + (g % 100000) * interval '5 minutes' AS created_at
  FROM generate_series(1, :n) g;

-- one table per method, the same primary key everywhere; autovacuum off so
-- it cannot run into a later measurement (the script vacuums explicitly)
CREATE TABLE bench.t_plain (id bigint PRIMARY KEY, email text, phone text, notes text,
                            created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_enc (id bigint PRIMARY KEY, email customer_vault.encrypted_text,
                          phone customer_vault.encrypted_text, notes customer_vault.encrypted_text,
                          created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_subj (LIKE bench.t_enc INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_pgp (id bigint PRIMARY KEY, email bytea, phone bytea, notes bytea,
                          created_at timestamptz) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_raw (LIKE bench.t_pgp INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_prot (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.t_plain_ix (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE INDEX ON bench.t_plain_ix (email);
CREATE TABLE bench.t_prot_bidx (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);

-- the transparent path: three protected columns bound to the row's id
SELECT customer_vault.protect_column('bench.t_prot', c, 'bench', 'id')
  FROM unnest(ARRAY['email', 'phone', 'notes']::name[]) c;
SELECT customer_vault.protect_column('bench.t_prot_bidx', 'email', 'bench', 'id', 'email_bidx');
SELECT customer_vault.protect_column('bench.t_prot_bidx', c, 'bench', 'id')
  FROM unnest(ARRAY['phone', 'notes']::name[]) c;

VACUUM (ANALYZE) bench.src;
SQL
}

# ---------------------------------------------------------------- measuring
declare -A S       # samples: key -> " s1 s2 ..."
declare -A EXPECT  # expected results of reads
declare -A SIZE    # table -> bytes per row

# timed KEY EXPECTED_RESULT STATEMENT: run it, check its result, keep the seconds
timed() {
    local key=$1 expect=$2 stmt=$3 out secs res
    out=$(sql -F '|' -c "SELECT secs, result FROM bench.time_sql(\$bq\$${stmt}\$bq\$)")
    secs=${out%%|*}
    res=${out#*|}
    if [ "$expect" != "-" ] && [ "$res" != "$expect" ]; then
        die "$key: got '$res', expected '$expect' from: $stmt"
    fi
    S[$key]="${S[$key]:+${S[$key]} }$secs"
}

# timed_insert KEY TABLE EXPECTED_ROWS SELECT...: empty the table, checkpoint, time the insert
timed_insert() {
    local key=$1 table=$2 rows=$3 select=$4
    sql -c "TRUNCATE $table" -c "CHECKPOINT"
    timed "$key" "$rows" "INSERT INTO $table (id, email, phone, notes, created_at) $select"
}

DEC_CV="customer_vault.decrypt(%s, id::text)"
RAWDEC="convert_from(decrypt(%s, bench.raw_key(), 'aes'), 'UTF8')"
PGPDEC="pgp_sym_decrypt(%s, bench.pgp_pass())"
three() { # three FORMAT: the sum of length(FORMAT(col)) over email, phone, notes
    local f=$1
    # shellcheck disable=SC2059  # the format is the SQL expression
    printf "length($f) + length($f) + length($f)" email phone notes
}

run_inserts() {
    local n=$1 rep=$2 pgp_n=$3 subj_n=$4
    log "insert, rep $rep/$REPS"
    timed_insert ins_plain bench.t_plain "$n" \
        "SELECT id, email, phone, notes, created_at FROM bench.src"
    timed_insert ins_enc bench.t_enc "$n" \
        "SELECT id, customer_vault.encrypt(email, 'bench', id::text), customer_vault.encrypt(phone, 'bench', id::text),
                customer_vault.encrypt(notes, 'bench', id::text), created_at FROM bench.src"
    # a new subject (a new key) per customer, as for new customers
    timed_insert ins_subj bench.t_subj "$subj_n" \
        "SELECT id, customer_vault.encrypt_for_subject(s, email, id::text), customer_vault.encrypt_for_subject(s, phone, id::text),
                customer_vault.encrypt_for_subject(s, notes, id::text), created_at
           FROM (SELECT *, 'n$n-r$rep-' || id AS s FROM bench.src WHERE id <= $subj_n) x"
    timed_insert ins_pgp bench.t_pgp "$pgp_n" \
        "SELECT id, pgp_sym_encrypt(email, bench.pgp_pass()), pgp_sym_encrypt(phone, bench.pgp_pass()),
                pgp_sym_encrypt(notes, bench.pgp_pass()), created_at FROM bench.src WHERE id <= $pgp_n"
    timed_insert ins_raw bench.t_raw "$n" \
        "SELECT id, encrypt(convert_to(email, 'UTF8'), bench.raw_key(), 'aes'),
                encrypt(convert_to(phone, 'UTF8'), bench.raw_key(), 'aes'),
                encrypt(convert_to(notes, 'UTF8'), bench.raw_key(), 'aes'), created_at FROM bench.src"
    timed_insert ins_prot bench.t_prot "$n" \
        "SELECT id, email, phone, notes, created_at FROM bench.src"
    timed_insert ins_plain_ix bench.t_plain_ix "$n" \
        "SELECT id, email, phone, notes, created_at FROM bench.src"
    timed_insert ins_prot_bidx bench.t_prot_bidx "$n" \
        "SELECT id, email, phone, notes, created_at FROM bench.src"
}

check_tables() {
    local n=$1 bad
    # the transparent path really stored ciphertext, the blind index is filled
    bad=$(sql -c "SELECT (SELECT count(*) FROM bench.t_prot WHERE left(email, 4) <> 'cv1\$' OR left(notes, 4) <> 'cv1\$')
                       + (SELECT count(*) FROM bench.t_prot_bidx WHERE email_bidx IS NULL OR left(phone, 4) <> 'cv1\$')")
    [ "$bad" = 0 ] || die "$bad rows of the protected tables are not sealed"
    sql -c "VACUUM (ANALYZE) bench.t_plain, bench.t_enc, bench.t_subj, bench.t_pgp, bench.t_raw,
                              bench.t_prot, bench.t_plain_ix, bench.t_prot_bidx"
    EXPECT[all]=$(sql -c "SELECT sum($(three '%s')) FROM bench.src")
    EXPECT[pgp]=$(sql -c "SELECT sum($(three '%s')) FROM bench.src WHERE id <= $2")
    EXPECT[subj]=$(sql -c "SELECT sum($(three '%s')) FROM bench.src WHERE id <= $3")
    local c t
    for c in email phone notes; do
        EXPECT[$c]=$(sql -c "SELECT sum(length($c)) FROM bench.src")
    done
    # bytes per row on disk (heap + TOAST), after the last insert
    for t in t_plain t_enc t_raw t_prot t_pgp t_subj; do
        SIZE[$t]=$(sql -c "SELECT (pg_relation_size(c.oid) + CASE WHEN c.reltoastrelid <> 0
                                   THEN pg_relation_size(c.reltoastrelid) ELSE 0 END)::float8
                                  / greatest((SELECT count(*) FROM bench.$t), 1)
                             FROM pg_class c WHERE c.oid = 'bench.$t'::regclass")
    done
}

run_reads() {
    local rep=$1 c
    log "read, rep $rep/$REPS"
    timed rd_plain "${EXPECT[all]}" "SELECT sum($(three '%s')) FROM bench.t_plain"
    timed rd_cv "${EXPECT[all]}" "SELECT sum($(three "$DEC_CV")) FROM bench.t_enc"
    timed rd_subj "${EXPECT[subj]}" "SELECT sum($(three "$DEC_CV")) FROM bench.t_subj"
    timed rd_pgp "${EXPECT[pgp]}" "SELECT sum($(three "$PGPDEC")) FROM bench.t_pgp"
    timed rd_raw "${EXPECT[all]}" "SELECT sum($(three "$RAWDEC")) FROM bench.t_raw"
    timed rd_view "${EXPECT[all]}" "SELECT sum($(three '%s')) FROM bench.t_prot_decrypted"
    for c in email phone notes; do
        timed "rd_plain_$c" "${EXPECT[$c]}" "SELECT sum(length($c)) FROM bench.t_plain"
        timed "rd_cv_$c" "${EXPECT[$c]}" "SELECT sum(length(customer_vault.decrypt($c, id::text))) FROM bench.t_enc"
    done
}

run_lookups() {
    local n=$1 rep=$2 kind out
    log "lookups, rep $rep/$REPS"
    for kind in plain bidx plain_row view_row; do
        out=$(sql -F '|' -c "SELECT secs, nfound FROM bench.lookup('$kind', $LOOKUPS, $n, 0.$rep, true)")
        [ "${out#*|}" = "$LOOKUPS" ] || die "lookup $kind found ${out#*|} of $LOOKUPS customers"
        S[lk_$kind]="${S[lk_$kind]:+${S[lk_$kind]} }${out%%|*}"
    done
}

# ---------------------------------------------------------------- 4. consent
# N customers = N subjects, about half of them (bench.consents(id)) with a live
# opt-in.  Integer subjects (id::text) under the purpose 'marketing', text
# subjects ('cust-<id>') under 'newsletter', so that each session's consent
# cache holds one kind only.  Most consent rows are INSERTed straight into
# consent_state as superuser (ledger_id 0); the customers with id <= gmax go
# through grant_consent()/withdraw_consent(), so the real path is exercised
# and timed.  Tables, all with the same rows and read as bench_marketer, a
# NOLOGIN role allowed both purposes, in REPS new sessions per table (cold:
# the first count of a session; warm: the REPS counts after it, REPS^2
# samples):
#   c_plain   no RLS
#   c_policy  enable_consent_policy(.., 'id', 'marketing')
#   c_exists  RLS with a plain EXISTS subquery on consent_state
#   c_text    a text subject column, enable_consent_policy(.., 'subject', 'newsletter')
declare -A CONSENT  # facts about the set-up, for the notes

setup_consent() {
    local n=$1 gmax out purpose
    gmax=$(( n / 100 )); [ "$gmax" -lt 100 ] && gmax=100; [ "$gmax" -gt 20000 ] && gmax=20000
    [ "$gmax" -gt "$n" ] && gmax=$n
    log "consent: set-up"
    sql -v n="$n" -v gmax="$gmax" >/dev/null <<'SQL'
SET client_min_messages = warning;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'bench_marketer') THEN
        CREATE ROLE bench_marketer NOLOGIN;
    END IF;
END
$$;
SELECT customer_vault.define_purpose('marketing', 'consent', 'benchmark: integer subjects');
SELECT customer_vault.define_purpose('newsletter', 'consent', 'benchmark: text subjects');
SELECT customer_vault.allow_purpose('bench_marketer', 'marketing');
SELECT customer_vault.allow_purpose('bench_marketer', 'newsletter');
-- a previous size of this run (BENCH_SCALING): start from no consents
DELETE FROM customer_vault.consent_state WHERE purpose IN ('marketing', 'newsletter');
GRANT USAGE ON SCHEMA bench TO bench_marketer;
-- for the EXISTS policy, which runs with the querying role's rights
GRANT SELECT ON customer_vault.consent_state TO bench_marketer;

-- which customers consent: about half, spread over the whole id range
CREATE FUNCTION bench.consents(id bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashint8(id) & 1) = 0 $$;
-- the subjects of a customer: integer for 'marketing', text for 'newsletter'
CREATE FUNCTION bench.subjects(id bigint, OUT subject text, OUT purpose text) RETURNS SETOF record
LANGUAGE sql IMMUTABLE AS $$
    VALUES (id::text, 'marketing'), ('cust-' || id, 'newsletter') $$;

CREATE TABLE bench.c_plain (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_policy (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_exists (LIKE bench.t_plain INCLUDING ALL) WITH (autovacuum_enabled = false);
CREATE TABLE bench.c_text (id bigint PRIMARY KEY, subject text NOT NULL, email text, phone text,
                           notes text, created_at timestamptz) WITH (autovacuum_enabled = false);
INSERT INTO bench.c_plain SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_policy SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_exists SELECT id, email, phone, notes, created_at FROM bench.src;
INSERT INTO bench.c_text SELECT id, 'cust-' || id, email, phone, notes, created_at FROM bench.src;
GRANT SELECT ON bench.c_plain, bench.c_policy, bench.c_exists, bench.c_text TO bench_marketer;

SELECT customer_vault.enable_consent_policy('bench.c_policy', 'id', 'marketing');
SELECT customer_vault.enable_consent_policy('bench.c_text', 'subject', 'newsletter');
ALTER TABLE bench.c_exists ENABLE ROW LEVEL SECURITY;
CREATE POLICY consent_exists ON bench.c_exists FOR SELECT
    USING (EXISTS (SELECT 1 FROM customer_vault.consent_state c
                    WHERE c.subject = c_exists.id::text AND c.purpose = 'marketing' AND c.granted));

-- bulk: consents of everyone above gmax, 1 in 20 with an end date a year
-- ahead; 1 in 10 of the others withdrew an earlier consent
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, true, CASE WHEN id % 20 = 0 THEN now() + interval '1 year' END,
       now() - interval '90 days', NULL, 0
  FROM bench.src, bench.subjects(id) s
 WHERE id > :gmax AND bench.consents(id);
INSERT INTO customer_vault.consent_state (subject, purpose, granted, valid_until, granted_at, withdrawn_at, ledger_id)
SELECT s.subject, s.purpose, false, NULL, now() - interval '90 days', now() - interval '1 day', 0
  FROM bench.src, bench.subjects(id) s
 WHERE id > :gmax AND NOT bench.consents(id) AND id % 10 = 0;
SQL
    # the real path for id <= gmax: grant_consent for the consenting ones, and
    # grant then withdraw_consent for 1 in 10 of the others
    local sel="FROM bench.src, bench.subjects(id) s WHERE id <= $gmax"
    local ngrant nwithdraw
    ngrant=$(sql -c "SELECT count(*) $sel AND (bench.consents(id) OR id % 10 = 5)")
    nwithdraw=$(sql -c "SELECT count(*) $sel AND NOT bench.consents(id) AND id % 10 = 5")
    timed cs_grant "$ngrant" \
        "SELECT count(customer_vault.grant_consent(s.subject, s.purpose,
                        jsonb_build_object('form', 'signup-v3', 'channel', 'web', 'customer', id),
                        CASE WHEN id % 20 = 0 THEN now() + interval '1 year' END))
         $sel AND (bench.consents(id) OR id % 10 = 5)"
    timed cs_withdraw "$nwithdraw" \
        "SELECT count(customer_vault.withdraw_consent(s.subject, s.purpose, '{\"channel\": \"unsubscribe link\"}'))
         $sel AND NOT bench.consents(id) AND id % 10 = 5"
    sql -c "VACUUM (ANALYZE) customer_vault.consent_state, customer_vault.consent_ledger,
                             bench.c_plain, bench.c_policy, bench.c_exists, bench.c_text"

    # the set-up checks out: as many live consents per purpose as consenting
    # customers, an intact ledger, the policies the bench means to measure
    CONSENT[n]=$n
    CONSENT[gmax]=$gmax
    CONSENT[grants]=$ngrant
    CONSENT[withdrawals]=$nwithdraw
    CONSENT[consented]=$(sql -c "SELECT count(*) FROM bench.src WHERE bench.consents(id)")
    CONSENT[state_rows]=$(sql -c "SELECT count(*) FROM customer_vault.consent_state")
    CONSENT[bulk]=$(sql -c "SELECT count(*) FROM customer_vault.consent_state WHERE ledger_id = 0")
    out=$(sql -F '|' -c "SELECT count(*) FILTER (WHERE purpose = 'marketing'), count(*) FILTER (WHERE purpose = 'newsletter')
                           FROM customer_vault.consent_state
                          WHERE granted AND (valid_until IS NULL OR valid_until > now())")
    [ "$out" = "${CONSENT[consented]}|${CONSENT[consented]}" ] ||
        die "consent set-up: live consents (marketing|newsletter) $out, expected ${CONSENT[consented]} each"
    out=$(sql -c "SELECT customer_vault.verify_ledger()")
    [ -z "$out" ] || die "consent set-up: verify_ledger() reports entry $out broken"
    # the restrictive policy calls the bigint overload for c_policy, the text one for c_text
    local t sig
    for t in c_policy:bigint:marketing c_text:text:newsletter; do
        IFS=: read -r t sig purpose <<<"$t"
        out=$(sql -c "SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p
                       WHERE p.polrelid = 'bench.$t'::regclass AND p.polname = 'customer_vault_consent'
                         AND NOT p.polpermissive AND p.polcmd = 'r'
                         AND EXISTS (SELECT 1 FROM pg_depend d
                                      WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                                        AND d.refobjid = 'customer_vault.may_process($sig, text)'::regprocedure)")
        [[ $out == *may_process*"'$purpose'"* ]] ||
            die "$t: no restrictive SELECT policy calling may_process($sig, '$purpose') (got '$out')"
    done

    # the per-backend cache must hold every live consent of a purpose, or it
    # falls back to an index probe per row: at least N (a superuser setting,
    # made in each measuring session before SET ROLE)
    local cache want
    CONSENT[int_path]="integer bitmap"
    CONSENT[txt_path]="hash table"
    cache=$(sql -c "SHOW customer_vault.consent_cache_size")
    want=${CONSENT_CACHE:-}
    [ -z "$want" ] && [ "$n" -gt "$cache" ] && want=$n
    if [ -n "$want" ]; then
        CONSENT[cache_set]="SET customer_vault.consent_cache_size = $want;"
        CONSENT[cache_note]="consent_cache_size set to $want (default $cache)"
        if [ "$want" -lt "${CONSENT[consented]}" ]; then
            CONSENT[cache_note]="${CONSENT[cache_note]}, below the ${CONSENT[consented]} live consents"
            CONSENT[int_path]="index probe per row (cache too small)"
            CONSENT[txt_path]=${CONSENT[int_path]}
        fi
    else
        CONSENT[cache_set]=""
        CONSENT[cache_note]="consent_cache_size $cache (default)"
    fi

    # plan shapes, for the notes
    out=$(sql <<'SQL'
SET ROLE bench_marketer;
EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.c_exists;
SQL
)
    if grep -q "hashed SubPlan" <<<"$out"; then
        CONSENT[exists_plan]="planned as a hashed SubPlan over consent_state"
    elif grep -q "SubPlan" <<<"$out"; then
        CONSENT[exists_plan]="planned as a SubPlan per row (pkey probe)"
    else
        CONSENT[exists_plan]="plan: $(grep -v '^ *->' <<<"$out" | tr -s ' \n' ' ' | head -c 80)"
    fi
    out=$(sql <<'SQL'
SET ROLE bench_marketer;
EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.c_policy;
SQL
)
    grep -q "may_process" <<<"$out" || die "c_policy: may_process() is not in the plan as bench_marketer: $out"
    # everything read once (OS cache, hint bits) before the first measurement
    sql -c "SELECT count(*) FROM bench.c_plain" -c "SELECT count(*) FROM bench.c_policy" \
        -c "SELECT count(*) FROM bench.c_exists" -c "SELECT count(*) FROM bench.c_text" >/dev/null
}

# consent_count KEY TABLE EXPECTED WHO: a new session counts TABLE 1 + REPS
# times, as bench_marketer (WHO=role) or as the superuser owner (WHO=owner,
# RLS bypassed): the first count is cold (it builds the consent cache), the
# next REPS warm; every count must give EXPECTED
consent_count() {
    local key=$1 table=$2 expect=$3 who=$4 out secs res i role_sql="" counts
    [ "$who" = role ] && role_sql="SET ROLE bench_marketer;"
    counts=$(for ((i = 0; i <= REPS; i++)); do
                 echo "SELECT secs, result FROM bench.time_sql('SELECT count(*) FROM $table');"
             done)
    i=0
    out=$(sql -F '|' <<SQL
${CONSENT[cache_set]}
$role_sql
$counts
SQL
)
    while IFS='|' read -r secs res; do
        [ -n "$secs" ] || continue
        i=$((i + 1))
        [ "$res" = "$expect" ] || die "$key: count(*) FROM $table as $who gave '$res', expected $expect"
        if [ $i = 1 ]; then
            S[${key}_cold]="${S[${key}_cold]:+${S[${key}_cold]} }$secs"
        else
            S[${key}_warm]="${S[${key}_warm]:+${S[${key}_warm]} }$secs"
        fi
    done <<<"$out"
    [ $i = $((REPS + 1)) ] || die "$key: expected $((REPS + 1)) counts from the session, got: $out"
}

run_consent() {
    local n=$1 rep=$2 k=${CONSENT[consented]}
    log "consent, rep $rep/$REPS"
    consent_count cs_plain bench.c_plain "$n" role
    consent_count cs_pol bench.c_policy "$k" role
    consent_count cs_ex bench.c_exists "$k" role
    consent_count cs_txtbase bench.c_text "$n" owner
    consent_count cs_txt bench.c_text "$k" role
}

# ---------------------------------------------------------------- 5. purge
# N rows (customer_id bigint, created_at timestamptz, a 200-byte note), 10
# consecutive rows per customer, 3 of every 10 rows (id % 10 < 3) older than
# the retention of 365 days (366 days to ~4 years old): spread through every
# page of the table.  The other rows are at most 330 days old, so the limit
# falls in no one's way however long a run takes.  Two identical tables,
# rebuilt every repetition:
#   p_purge   set_retention(.., 'created_at', '365 days', 'delete', 'customer_id'),
#             emptied by CALL customer_vault.purge(batch_size => 10000)
#   p_delete  the same rows, emptied by one DELETE with the same predicate,
#             DELETE FROM bench.p_delete WHERE created_at < now() - interval '365 days'
# Customer PURGE_HOLD is under a legal hold: the purge keeps their 3 expired
# rows, the plain DELETE (which does not look at holds) removes them.  While
# each operation runs, pgbench inserts single rows (customer_id 0, created_at
# now()) into the same table at PURGE_RATE a second, one session, and logs
# every INSERT's latency: the longest INSERT overlapping the operation is its
# "wait".  The order of the two operations alternates between repetitions.
PURGE_HOLD=7
WRITER_APP=bench_purge_writer
declare -A PURGE  # facts for the notes

setup_purge() {
    PGBENCH=$(command -v pgbench || true)
    [ -z "$PGBENCH" ] && [ -x /usr/lib/postgresql/15/bin/pgbench ] && PGBENCH=/usr/lib/postgresql/15/bin/pgbench
    [ -n "$PGBENCH" ] || die "purge: pgbench not found (PATH or /usr/lib/postgresql/15/bin)"
    # one live hold, kept across runs and sizes
    sql -v hold="$PURGE_HOLD" >/dev/null <<'SQL'
SELECT customer_vault.place_legal_hold(:'hold', 'bench: litigation hold on one customer')
 WHERE NOT EXISTS (SELECT 1 FROM customer_vault.legal_holds h
                    WHERE h.subject = :'hold' AND h.released_at IS NULL AND (h.until IS NULL OR h.until > now()));
SQL
    printf "INSERT INTO %%s (customer_id, created_at, note) VALUES (0, now(), '%s');\n" \
        "$(printf 'w%.0s' $(seq 1 200))" > "$tmp/writer.fmt"
    PURGE[rate]=$PURGE_RATE
    PURGE[wait_n_purge]=0
    PURGE[wait_n_delete]=0
}

make_purge_tables() {
    sql >/dev/null <<'SQL'
SET client_min_messages = warning;
-- the same physical row order in both tables: no scan starting mid-table
SET synchronize_seqscans = off;
DROP TABLE IF EXISTS bench.p_purge, bench.p_delete;
CREATE TABLE bench.p_purge (customer_id bigint NOT NULL, created_at timestamptz NOT NULL, note text)
    WITH (autovacuum_enabled = false);
CREATE TABLE bench.p_delete (LIKE bench.p_purge) WITH (autovacuum_enabled = false);
INSERT INTO bench.p_purge
SELECT 1 + (id - 1) / 10,
       CASE WHEN id % 10 < 3
            THEN now() - interval '366 days' - (id * 37 % 1000) * interval '1 day' - (id % 1440) * interval '1 minute'
            ELSE now() - (id * 13 % 330) * interval '1 day' - (id % 1440) * interval '1 minute' END,
       notes
  FROM bench.src;
INSERT INTO bench.p_delete SELECT * FROM bench.p_purge;
SELECT customer_vault.set_retention('bench.p_purge', 'created_at', '365 days', 'delete', 'customer_id');
VACUUM (ANALYZE) bench.p_purge, bench.p_delete;
SQL
}

# purge_stats TABLE: rows|expired|expired held|checksum of the rows inside the retention|writer rows
purge_stats() {
    sql -F '|' -v hold="$PURGE_HOLD" <<SQL
SELECT count(*) FILTER (WHERE customer_id <> 0),
       count(*) FILTER (WHERE customer_id <> 0 AND created_at < now() - interval '365 days'),
       count(*) FILTER (WHERE customer_id = :'hold'::bigint AND created_at < now() - interval '365 days'),
       COALESCE(sum(hashtext(note)::bigint + customer_id)
                FILTER (WHERE customer_id <> 0 AND created_at >= now() - interval '365 days'), 0),
       count(*) FILTER (WHERE customer_id = 0)
  FROM $1
SQL
}

# start_writer TABLE: pgbench inserting into TABLE at PURGE_RATE/s, logging each INSERT
start_writer() {
    local table=$1 i
    # shellcheck disable=SC2059  # the format names the table
    printf "$(cat "$tmp/writer.fmt")\n" "$table" > "$tmp/writer.sql"
    rm -f "$tmp"/writer_log.* "$tmp/writer.out"
    PGAPPNAME=$WRITER_APP "$PGBENCH" -n -c 1 -j 1 -T 86400 -R "$PURGE_RATE" -l --log-prefix="$tmp/writer_log" \
        -f "$tmp/writer.sql" "$DB" >"$tmp/writer.out" 2>&1 &
    WRITER_PID=$!
    for ((i = 0; i < 200; i++)); do
        [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$WRITER_APP'")" = 1 ] && break
        kill -0 "$WRITER_PID" 2>/dev/null || die "purge: the pgbench writer ended: $(cat "$tmp/writer.out")"
        sleep 0.05
    done
    [ "$i" -lt 200 ] || die "purge: the pgbench writer did not connect: $(cat "$tmp/writer.out")"
    # a few INSERTs before the operation starts
    sleep 0.3
}

# stop_writer: end the writer's session (pgbench then stops, its client
# "aborted", and writes its log); prints the log's INSERTs as
# "end_epoch_s exec_s" (latency less the schedule lag of -R)
stop_writer() {
    sql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$WRITER_APP'" >/dev/null
    wait "$WRITER_PID" || true
    WRITER_PID=""
    grep -q "aborted" "$tmp/writer.out" || die "purge: unexpected end of the pgbench writer: $(cat "$tmp/writer.out")"
    # the only errors: the ended session, and the "aborted" run it makes
    grep -E "ERROR|error:" "$tmp/writer.out" |
        grep -vqE "terminating connection due to administrator command|Run was aborted" &&
        die "purge: the pgbench writer failed: $(cat "$tmp/writer.out")"
    local f
    for f in "$tmp"/writer_log.*; do
        [ -e "$f" ] || die "purge: pgbench wrote no log: $(cat "$tmp/writer.out")"
        awk 'NF >= 7 { printf "%s.%06d %.6f\n", $5, $6, ($3 - $7) / 1e6 }' "$f"
    done
}

# writer_wait LOG T0 T1: "inserts overlapping [T0, T1], longest of them (s), all inserts"
writer_wait() {
    awk -v t0="$2" -v t1="$3" '{ n++; if ($1 >= t0 && $1 - $2 <= t1) { m++; if ($2 > max) max = $2 } }
        END { printf "%d %.6f %d\n", m, max, n }' "$1"
}

# purge_op KIND: run the purge or the DELETE with the writer on the same table;
# sets OP_SECS, OP_WAIT (longest overlapping INSERT, s), OP_NW (their number)
purge_op() {
    local kind=$1 table stmt out t0 t1 nlog nw_rows
    case $kind in
        purge)  table=bench.p_purge;  stmt="CALL customer_vault.purge(batch_size => 10000);" ;;
        delete) table=bench.p_delete; stmt="DELETE FROM bench.p_delete WHERE created_at < now() - interval '365 days';" ;;
    esac
    sql -c "CHECKPOINT"
    start_writer "$table"
    out=$(sql -F '|' <<SQL
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$stmt
SELECT :t0, extract(epoch FROM clock_timestamp());
SQL
)
    IFS='|' read -r t0 t1 <<<"$out"
    stop_writer > "$tmp/writer.$kind"
    OP_SECS=$(calc "$t1 - $t0")
    read -r OP_NW OP_WAIT nlog < <(writer_wait "$tmp/writer.$kind" "$t0" "$t1")
    # every logged INSERT is in the table (one more if the session ended between commit and reply)
    nw_rows=$(sql -c "SELECT count(*) FROM $table WHERE customer_id = 0")
    [ "$nlog" -gt 0 ] || die "purge: the writer logged no INSERT during the $kind"
    if [ "$nw_rows" -lt "$nlog" ] || [ "$nw_rows" -gt $((nlog + 1)) ]; then
        die "$kind: $nw_rows rows of the concurrent writer in $table, its log has $nlog INSERTs"
    fi
}

run_purge() {
    local n=$1 rep=$2 before after exp_purge exp_delete kind log
    log "purge, rep $rep/$REPS"
    make_purge_tables
    before=$(purge_stats bench.p_purge)
    [ "$(purge_stats bench.p_delete)" = "$before" ] || die "purge: the two tables differ before the run"
    local rows expired held sum _w
    IFS='|' read -r rows expired held sum _w <<<"$before"
    if [ "$rows" != "$n" ] || [ "$held" -eq 0 ] || [ "$expired" -eq 0 ]; then
        die "purge set-up: $rows rows, $expired expired, $held of them held (expected $n rows, some expired and held)"
    fi
    PURGE[expired]=$expired
    PURGE[held]=$held
    local kinds="purge delete"
    [ $((rep % 2)) = 0 ] && kinds="delete purge"
    for kind in $kinds; do
        purge_op "$kind"
        S[pg_$kind]="${S[pg_$kind]:+${S[pg_$kind]} }$OP_SECS"
        S[pgw_$kind]="${S[pgw_$kind]:+${S[pgw_$kind]} }$OP_WAIT"
        PURGE[wait_n_$kind]=$(( ${PURGE[wait_n_$kind]} + OP_NW ))
    done

    # what is left: the purge keeps the held rows, the DELETE does not; every
    # row inside the retention is still there in both (count and checksum)
    exp_purge="$((rows - expired + held))|$held|$held|$sum"
    exp_delete="$((rows - expired))|0|0|$sum"
    after=$(purge_stats bench.p_purge); after=${after%|*}
    [ "$after" = "$exp_purge" ] ||
        die "purge left rows|expired|held|checksum $after, expected $exp_purge"
    after=$(purge_stats bench.p_delete); after=${after%|*}
    [ "$after" = "$exp_delete" ] ||
        die "DELETE left rows|expired|held|checksum $after, expected $exp_delete"
    # purge_log: one finished row for the table, with the counts
    log=$(sql -F '|' -c "SELECT rows_purged, rows_held, batches, finished_at IS NOT NULL AND NOT dry_run,
                                extract(epoch FROM finished_at - started_at)
                           FROM customer_vault.purge_log WHERE tbl = 'bench.p_purge' ORDER BY id DESC LIMIT 1")
    local lp lh lb lok lsecs
    IFS='|' read -r lp lh lb lok lsecs <<<"$log"
    if [ "$lp" != "$((expired - held))" ] || [ "$lh" != "$held" ] || [ "$lok" != t ]; then
        die "purge_log: rows_purged|rows_held|batches|finished $lp|$lh|$lb|$lok, expected $((expired - held))|$held|..|t"
    fi
    PURGE[log_purged]=$lp
    PURGE[log_held]=$lh
    S[pg_batches]="${S[pg_batches]:+${S[pg_batches]} }$lb"
    S[pg_logsecs]="${S[pg_logsecs]:+${S[pg_logsecs]} }$lsecs"
    sql -c "DROP TABLE bench.p_purge, bench.p_delete"
}

# rotate_key, then reencrypt the three columns of the explicit and the protected table
run_rotation() {
    local rep=$1 out t_enc t_prot bad
    log "rotation, rep $rep/$REPS"
    out=$(sql -F '|' <<'SQL'
SELECT customer_vault.rotate_key('bench') AS v \gset
SELECT clock_timestamp() AS t0 \gset
CALL customer_vault.reencrypt('bench.t_enc', 'email', 10000, 'id');
CALL customer_vault.reencrypt('bench.t_enc', 'phone', 10000, 'id');
CALL customer_vault.reencrypt('bench.t_enc', 'notes', 10000, 'id');
SELECT clock_timestamp() AS t1 \gset
CALL customer_vault.reencrypt('bench.t_prot', 'email');
CALL customer_vault.reencrypt('bench.t_prot', 'phone');
CALL customer_vault.reencrypt('bench.t_prot', 'notes');
SELECT extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz),
       extract(epoch FROM clock_timestamp() - :'t1'::timestamptz),
       (SELECT count(*) FROM bench.t_enc
         WHERE customer_vault.key_of(email) <> 'bench:' || :v OR customer_vault.key_of(phone) <> 'bench:' || :v
            OR customer_vault.key_of(notes) <> 'bench:' || :v)
     + (SELECT count(*) FROM bench.t_prot
         WHERE customer_vault.key_of(email::customer_vault.encrypted_text) <> 'bench:' || :v
            OR customer_vault.key_of(phone::customer_vault.encrypted_text) <> 'bench:' || :v
            OR customer_vault.key_of(notes::customer_vault.encrypted_text) <> 'bench:' || :v);
SQL
)
    IFS='|' read -r t_enc t_prot bad <<<"$out"
    [ "$bad" = 0 ] || die "reencrypt left $bad rows under an older key version"
    S[rot_enc]="${S[rot_enc]:+${S[rot_enc]} }$t_enc"
    S[rot_prot]="${S[rot_prot]:+${S[rot_prot]} }$t_prot"
    sql -c "VACUUM bench.t_enc, bench.t_prot"
}

# ---------------------------------------------------------------- reporting
declare -a ROWS_OUT
row() { # row N SECTION OPERATION MEDIAN SAMPLES PER_UNIT OVERHEAD RATIO TARGET RESULT NOTE
    local IFS='|'
    ROWS_OUT+=("$*")
    local csvline="\"$1\",\"$REPS\"" f
    shift
    for f in "$@"; do
        csvline="$csvline,\"${f//\"/\"\"}\""
    done
    echo "$csvline" >> "$CSV"
}
verdict() { if le "$1" "$2"; then echo PASS; else echo MISS; fi }

declare -A PERROW  # n:key -> us per row, for the scaling summary

report() {
    local n=$1 pgp_n=$2 subj_n=$3
    local k
    declare -A M
    for k in "${!S[@]}"; do M[$k]=$(median "${S[$k]}"); done
    local nv=$((3 * n))
    us() { calc "$1 * 1000000 / $2"; }                 # seconds, count -> us each

    local p_ins=${M[ins_plain]:-} p_rd=${M[rd_plain]:-} pr_ins pr_rd
    local t per over ratio scaled note

    # 1. inserts
    if want insert; then
    pr_ins=$(us "$p_ins" "$n")
    row "$n" insert "plaintext" "$p_ins" "${S[ins_plain]}" "$pr_ins" "" 1 "" "" "baseline"
    per=$(us "${M[ins_enc]}" "$n"); over=$(calc "$per - $pr_ins"); ratio=$(calc "${M[ins_enc]} / $p_ins")
    row "$n" insert "encrypt() x3, explicit encrypted_text" "${M[ins_enc]}" "${S[ins_enc]}" "$per" "$over" "$ratio" \
        "<= 1.5x plaintext" "$(verdict "$ratio" 1.5)" \
        "$(fmt "$(calc "$over / 3")") us/value over plaintext; OpenSSL seal floor 25/12/200 B: $(fmt "${FLOOR_SEAL[25]}")/$(fmt "${FLOOR_SEAL[12]}")/$(fmt "${FLOOR_SEAL[200]}") us"
    per=$(us "${M[ins_subj]}" "$subj_n"); over=$(calc "$per - $pr_ins"); scaled=$(calc "$per * $n / 1000000")
    ratio=$(calc "$per / $pr_ins"); note="a new subject key per row"
    [ "$subj_n" -lt "$n" ] && note="$note; measured on $subj_n rows, total scaled per row to $n"
    row "$n" insert "encrypt_for_subject() x3" "$scaled" "${S[ins_subj]}" "$per" "$over" "$ratio" "" "" "$note"
    per=$(us "${M[ins_pgp]}" "$pgp_n"); over=$(calc "$per - $pr_ins"); scaled=$(calc "$per * $n / 1000000")
    ratio=$(calc "$per / $pr_ins"); note="default s2k"
    [ "$pgp_n" -lt "$n" ] && note="$note; measured on $pgp_n rows, total scaled per row to $n"
    row "$n" insert "pgcrypto pgp_sym_encrypt() x3" "$scaled" "${S[ins_pgp]}" "$per" "$over" "$ratio" "" "" "$note"
    per=$(us "${M[ins_raw]}" "$n"); over=$(calc "$per - $pr_ins"); ratio=$(calc "${M[ins_raw]} / $p_ins")
    row "$n" insert "pgcrypto encrypt(convert_to(..), key, 'aes') x3" "${M[ins_raw]}" "${S[ins_raw]}" "$per" "$over" "$ratio" "" "" "AES-CBC, no integrity"
    per=$(us "${M[ins_prot]}" "$n"); over=$(calc "$per - $pr_ins"); ratio=$(calc "${M[ins_prot]} / $p_ins")
    row "$n" insert "transparent: INSERT plaintext, 3 protected columns" "${M[ins_prot]}" "${S[ins_prot]}" "$per" "$over" "$ratio" \
        "<= +2 us/row" "$(verdict "$over" 2)" "trigger path, context id"
    local pr_ix; pr_ix=$(us "${M[ins_plain_ix]}" "$n")
    row "$n" insert "plaintext + btree(email)" "${M[ins_plain_ix]}" "${S[ins_plain_ix]}" "$pr_ix" "" "" "" "" "baseline of the next row"
    per=$(us "${M[ins_prot_bidx]}" "$n"); over=$(calc "$per - $pr_ix"); ratio=$(calc "${M[ins_prot_bidx]} / ${M[ins_plain_ix]}")
    row "$n" insert "transparent + blind index on email (btree)" "${M[ins_prot_bidx]}" "${S[ins_prot_bidx]}" "$per" "$over" "$ratio" \
        "" "" "over plaintext + btree(email)"

    PERROW[$n:ins_plain]=$pr_ins
    PERROW[$n:ins_enc]=$(us "${M[ins_enc]}" "$n")
    PERROW[$n:ins_prot]=$(us "${M[ins_prot]}" "$n")
    fi

    # 2. reads
    if want read; then
    pr_rd=$(us "$p_rd" "$n")
    row "$n" read "plaintext" "$p_rd" "${S[rd_plain]}" "$pr_rd" "" 1 "" "" "baseline; sum(length()) of 3 columns"
    local cv_rd=${M[rd_cv]}
    per=$(us "$cv_rd" "$n"); over=$(calc "$per - $pr_rd"); ratio=$(calc "$cv_rd / $p_rd")
    row "$n" read "decrypt() x3" "$cv_rd" "${S[rd_cv]}" "$per" "$over" "$ratio" "" "" "$(fmt "$(calc "$over / 3")") us/value over plaintext"
    per=$(us "${M[rd_subj]}" "$subj_n"); over=$(calc "$per - $pr_rd"); scaled=$(calc "$per * $n / 1000000")
    note="one key per row, each unwrapped once per session"
    [ "$subj_n" -lt "$n" ] && note="$note; measured on $subj_n rows, total scaled per row to $n"
    row "$n" read "decrypt() x3, per-subject keys" "$scaled" "${S[rd_subj]}" "$per" "$over" "$(calc "$scaled / $p_rd")" "" "" "$note"
    local raw_rd=${M[rd_raw]}
    per=$(us "$raw_rd" "$n"); over=$(calc "$per - $pr_rd")
    row "$n" read "pgcrypto decrypt(.., key, 'aes') x3" "$raw_rd" "${S[rd_raw]}" "$per" "$over" "$(calc "$raw_rd / $p_rd")" "" "" "with convert_from(.., 'UTF8') to get text"
    row "$n" read "  decrypt() vs pgcrypto decrypt" "" "" "" "" "$(calc "$cv_rd / $raw_rd")" \
        "<= 1.0x pgcrypto raw" "$(verdict "$(calc "$cv_rd / $raw_rd")" 1)" "ratio of read times"
    per=$(us "${M[rd_pgp]}" "$pgp_n"); over=$(calc "$per - $pr_rd"); scaled=$(calc "$per * $n / 1000000")
    note="default s2k"
    [ "$pgp_n" -lt "$n" ] && note="$note; measured on $pgp_n rows, total scaled per row to $n"
    row "$n" read "pgcrypto pgp_sym_decrypt() x3" "$scaled" "${S[rd_pgp]}" "$per" "$over" "$(calc "$scaled / $p_rd")" "" "" "$note"
    local speedup; speedup=$(calc "$scaled / $cv_rd")
    row "$n" read "  decrypt() speed-up over pgp_sym_decrypt" "" "" "" "" "$speedup" \
        ">= 20x" "$(verdict 20 "$speedup")" "pgp time / decrypt() time"
    per=$(us "${M[rd_view]}" "$n"); over=$(calc "$per - $pr_rd")
    local percol; percol=$(calc "$over / 3")
    row "$n" read "<table>_decrypted view, 3 protected columns" "${M[rd_view]}" "${S[rd_view]}" "$per" "$over" \
        "$(calc "${M[rd_view]} / $p_rd")" "<= +1 us/row per column" "$(verdict "$percol" 1)" \
        "$(fmt "$percol") us/row per protected column"
    local c sz tot_over=0 tot_floor=0
    for c in email phone notes; do
        case $c in email) sz=25 ;; phone) sz=12 ;; notes) sz=200 ;; esac
        local pp; pp=$(us "${M[rd_plain_$c]}" "$n")
        per=$(us "${M[rd_cv_$c]}" "$n"); over=$(calc "$per - $pp"); ratio=$(calc "$over / ${FLOOR_OPEN[$sz]}")
        tot_over=$(calc "$tot_over + $over"); tot_floor=$(calc "$tot_floor + ${FLOOR_OPEN[$sz]}")
        row "$n" read "  decrypt() per value, $c ($sz B)" "${M[rd_cv_$c]}" "${S[rd_cv_$c]}" "$per" "$over" "$ratio" \
            "<= 3x OpenSSL floor" "$(verdict "$ratio" 3)" \
            "overhead over plaintext read vs OpenSSL open floor $(fmt "${FLOOR_OPEN[$sz]}" 3) us"
    done
    ratio=$(calc "$tot_over / $tot_floor")
    row "$n" read "  decrypt() per value, all three" "" "" "" "$(calc "$tot_over / 3")" "$ratio" \
        "<= 3x OpenSSL floor" "$(verdict "$ratio" 3)" "mean overhead vs mean floor $(fmt "$(calc "$tot_floor / 3")" 3) us"

    PERROW[$n:rd_plain]=$pr_rd
    PERROW[$n:rd_cv]=$(us "$cv_rd" "$n")
    PERROW[$n:rd_raw]=$(us "$raw_rd" "$n")
    PERROW[$n:rd_view]=$(us "${M[rd_view]}" "$n")
    fi

    # 3. lookups
    if want lookup; then
    local lp lb
    lp=$(us "${M[lk_plain]}" "$LOOKUPS"); lb=$(us "${M[lk_bidx]}" "$LOOKUPS")
    row "$n" lookup "plaintext btree(email) = \$1" "${M[lk_plain]}" "${S[lk_plain]}" "$lp" "" 1 "" "" "us per lookup; $LOOKUPS random customers, warm cache"
    row "$n" lookup "blind index btree = column_blind_index(\$1)" "${M[lk_bidx]}" "${S[lk_bidx]}" "$lb" "$(calc "$lb - $lp")" \
        "$(calc "$lb / $lp")" "" "" "us per lookup"
    lp=$(us "${M[lk_plain_row]}" "$LOOKUPS"); lb=$(us "${M[lk_view_row]}" "$LOOKUPS")
    row "$n" lookup "plaintext, whole row" "${M[lk_plain_row]}" "${S[lk_plain_row]}" "$lp" "" 1 "" "" "us per lookup"
    row "$n" lookup "blind index via _decrypted view, whole row" "${M[lk_view_row]}" "${S[lk_view_row]}" "$lb" "$(calc "$lb - $lp")" \
        "$(calc "$lb / $lp")" "" "" "us per lookup, 3 values decrypted"

    PERROW[$n:lk_plain]=$(us "${M[lk_plain]}" "$LOOKUPS")
    PERROW[$n:lk_bidx]=$(us "${M[lk_bidx]}" "$LOOKUPS")
    fi

    # storage
    if want insert; then
    local t label
    for t in t_plain t_enc t_raw t_pgp t_prot; do
        case $t in
            t_plain) label="plaintext" ;;
            t_enc) label="encrypt(), encrypted_text (binary envelope)" ;;
            t_raw) label="pgcrypto encrypt(.., 'aes'), bytea" ;;
            t_pgp) label="pgcrypto pgp_sym_encrypt(), bytea" ;;
            t_prot) label="transparent, text envelope (cv1\$ + base64)" ;;
        esac
        row "$n" size "$label" "" "" "" "" "$(calc "${SIZE[$t]} / ${SIZE[t_plain]}")" "" "" \
            "$(fmt "${SIZE[$t]}" 0) bytes/row, heap + TOAST"
    done

    fi

    # 4. consent: count(*) as bench_marketer; cold = first count of a new session, warm = the ones after it
    if want consent; then
    local k=${CONSENT[consented]} cp pw pc ew tb tw tc
    cp=${M[cs_plain_warm]}; pw=${M[cs_pol_warm]}; pc=${M[cs_pol_cold]}; ew=${M[cs_ex_warm]}
    tb=${M[cs_txtbase_warm]}; tw=${M[cs_txt_warm]}; tc=${M[cs_txt_cold]}
    local cpr; cpr=$(us "$cp" "$n")
    row "$n" consent "count(*), no RLS" "$cp" "${S[cs_plain_warm]}" "$cpr" "" 1 "" "" \
        "baseline; $n rows = $n subjects, as bench_marketer; first count of a session $(fmt "${M[cs_plain_cold]}" 3) s"
    per=$(us "$pw" "$n"); over=$(calc "$per - $cpr"); ratio=$(calc "$pw / $cp")
    row "$n" consent "count(*), consent policy, warm" "$pw" "${S[cs_pol_warm]}" "$per" "$over" "$ratio" \
        "<= 2x no RLS" "$(verdict "$ratio" 2)" \
        "may_process(id::bigint, 'marketing'), ${CONSENT[int_path]}; $k of $n rows visible; ${CONSENT[cache_note]}"
    per=$(us "$pc" "$n"); over=$(calc "$per - $cpr"); ratio=$(calc "$pc / $cp")
    row "$n" consent "count(*), consent policy, cold (new session)" "$pc" "${S[cs_pol_cold]}" "$per" "$over" "$ratio" \
        "" "" "first count of a session: builds the cache from consent_state (${CONSENT[state_rows]} rows); ratio to warm no RLS"
    per=$(us "$ew" "$n"); over=$(calc "$per - $cpr"); ratio=$(calc "$ew / $cp")
    row "$n" consent "count(*), EXISTS subquery policy" "$ew" "${S[cs_ex_warm]}" "$per" "$over" "$ratio" "" "" \
        "EXISTS (.. consent_state c WHERE c.subject = id::text ..), ${CONSENT[exists_plan]}; warm"
    ratio=$(calc "$ew / $pw")
    row "$n" consent "  consent policy speed-up over EXISTS policy" "" "" "" "" "$ratio" \
        ">= 5x" "$(verdict 5 "$ratio")" "EXISTS time / consent policy time, both warm"
    local tbr; tbr=$(us "$tb" "$n")
    row "$n" consent "count(*), text subjects, no RLS" "$tb" "${S[cs_txtbase_warm]}" "$tbr" "" 1 "" "" \
        "baseline of the next rows: the same table read by its owner (RLS bypassed); subjects 'cust-<id>'"
    per=$(us "$tw" "$n"); over=$(calc "$per - $tbr"); ratio=$(calc "$tw / $tb")
    row "$n" consent "count(*), text subjects, consent policy, warm" "$tw" "${S[cs_txt_warm]}" "$per" "$over" "$ratio" \
        "<= 2x no RLS" "$(verdict "$ratio" 2)" "may_process(subject::text, 'newsletter'), ${CONSENT[txt_path]}; $k of $n rows visible"
    per=$(us "$tc" "$n"); over=$(calc "$per - $tbr"); ratio=$(calc "$tc / $tb")
    row "$n" consent "count(*), text subjects, consent policy, cold" "$tc" "${S[cs_txt_cold]}" "$per" "$over" "$ratio" \
        "" "" "first count of a session (builds the cache); ratio to warm no RLS"
    per=""; [ "${CONSENT[grants]}" -gt 0 ] && per=$(us "${M[cs_grant]}" "${CONSENT[grants]}")
    row "$n" consent "grant_consent(), per call" "${M[cs_grant]}" "${S[cs_grant]}" "$per" "" "" "" "" \
        "${CONSENT[grants]} calls in one statement, once per run (+ ${CONSENT[withdrawals]} withdraw_consent()); the other ${CONSENT[bulk]} consent rows INSERTed directly as superuser (ledger_id 0)"

    PERROW[$n:cs_plain]=$cpr
    PERROW[$n:cs_pol]=$(us "$pw" "$n")
    PERROW[$n:cs_pol_cold]=$(us "$pc" "$n")
    PERROW[$n:cs_txt]=$(us "$tw" "$n")
    fi

    # 5. purge: CALL purge() vs one DELETE, the concurrent writer's longest INSERT
    if want purge; then
    local pd=${M[pg_delete]} pp=${M[pg_purge]} ne=$((PURGE[expired] - PURGE[held]))
    local wmax_p wmax_d prd
    prd=$(us "$pd" "${PURGE[expired]}")
    row "$n" purge "DELETE .. WHERE created_at < now() - '365 days'" "$pd" "${S[pg_delete]}" "$prd" "" 1 "" "" \
        "baseline, one statement; us/unit per row removed (${PURGE[expired]} of $n = 30%, spread over every page; held rows removed too: no hold check); synchronous_commit on (one commit; fsync off in the harness)"
    per=$(us "$pp" "$ne"); over=$(calc "$per - $prd"); ratio=$(calc "$pp / $pd")
    row "$n" purge "CALL purge(batch_size => 10000)" "$pp" "${S[pg_purge]}" "$per" "$over" "$ratio" \
        "<= 2x single DELETE" "$(verdict "$ratio" 2)" \
        "purge_log: ${PURGE[log_purged]} purged, ${PURGE[log_held]} held (1 subject on hold), batches: $(fmt "${M[pg_batches]}" 0), $(fmt "${M[pg_logsecs]}" 3) s started..finished; synchronous_commit off per batch; us/unit per row removed"
    wmax_p=$(largest "${S[pgw_purge]}")
    wmax_d=$(largest "${S[pgw_delete]}")
    # no verdict when no INSERT overlapped a purge (tiny runs)
    local wv=""
    [ "${PURGE[wait_n_purge]}" -gt 0 ] && wv=$(verdict "$wmax_p" 1)
    row "$n" purge "  concurrent INSERT, longest wait during purge" "${M[pgw_purge]}" "${S[pgw_purge]}" "" "" "" \
        "never > 1 s" "$wv" \
        "longest of each rep (median shown); worst $(fmt "$(calc "$wmax_p * 1000")" 1) ms over ${PURGE[wait_n_purge]} single-row INSERTs at ${PURGE[rate]}/s (pgbench -R, one session) overlapping the purges"
    row "$n" purge "  concurrent INSERT, longest wait during DELETE" "${M[pgw_delete]}" "${S[pgw_delete]}" "" "" "" \
        "" "" \
        "longest of each rep (median shown); worst $(fmt "$(calc "$wmax_d * 1000")" 1) ms over ${PURGE[wait_n_delete]} single-row INSERTs overlapping the DELETEs"
    PERROW[$n:pg_delete]=$prd
    PERROW[$n:pg_purge]=$per
    fi

    # 6. rotation
    if want rotation; then
    local fl; fl=$(calc "(${FLOOR_SEAL[25]} + ${FLOOR_OPEN[25]} + ${FLOOR_SEAL[12]} + ${FLOOR_OPEN[12]} + ${FLOOR_SEAL[200]} + ${FLOOR_OPEN[200]}) / 3")
    per=$(us "${M[rot_enc]}" "$nv")
    row "$n" rotation "rotate_key + reencrypt, explicit columns" "${M[rot_enc]}" "${S[rot_enc]}" "$per" "" "" "" "" \
        "$(fmt "$(calc "$nv / ${M[rot_enc]}")" 0) values/s (us/unit per value; one reencrypt per column); OpenSSL open+seal floor $(fmt "$fl" 3) us"
    per=$(us "${M[rot_prot]}" "$nv")
    row "$n" rotation "rotate_key + reencrypt, protected columns" "${M[rot_prot]}" "${S[rot_prot]}" "$per" "" "" "" "" \
        "$(fmt "$(calc "$nv / ${M[rot_prot]}")" 0) values/s (us/unit per value; one reencrypt per column)"

    PERROW[$n:rot_enc]=$(us "${M[rot_enc]}" "$nv")
    fi
}

print_table() {
    local n=$1 line rn sect op med per over ratio target result note
    local w=52
    printf '\n%-9s %-*s %10s %10s %10s %8s  %-24s %-6s %s\n' \
        section "$w" operation "median s" "us/unit" "+us/unit" ratio target result note
    printf '%s\n' "$(printf '%.0s-' $(seq 1 150))"
    for line in "${ROWS_OUT[@]}"; do
        IFS='|' read -r rn sect op med _ per over ratio target result note <<<"$line"
        [ "$rn" = "$n" ] || continue
        printf '%-9s %-*s %10s %10s %10s %8s  %-24s %-6s %s\n' "$sect" "$w" "$op" \
            "$( [ -n "$med" ] && fmt "$med" 3 || printf -- '-')" \
            "$( [ -n "$per" ] && fmt "$per" 2 || printf -- '-')" \
            "$( [ -n "$over" ] && fmt "$over" 2 || printf -- '-')" \
            "$( [ -n "$ratio" ] && printf '%sx' "$(fmt "$ratio" 2)" || printf -- '-')" \
            "$target" "$result" "$note"
    done
}

# ---------------------------------------------------------------- one run
run_suite() {
    local n=$1 rep
    local pgp_n=$(( n < PGP_MAX ? n : PGP_MAX ))
    local subj_n=$(( n < SUBJ_MAX ? n : SUBJ_MAX ))
    S=()
    CONSENT=()
    PURGE=()
    EXPECT=()
    SIZE=()
    log "$n rows: generating data"
    setup_schema "$n"
    if want insert; then
        for rep in $(seq 1 "$REPS"); do run_inserts "$n" "$rep" "$pgp_n" "$subj_n"; done
        check_tables "$n" "$pgp_n" "$subj_n"
    fi
    if want read; then for rep in $(seq 1 "$REPS"); do run_reads "$rep"; done; fi
    if want lookup; then for rep in $(seq 1 "$REPS"); do run_lookups "$n" "$rep"; done; fi
    if want consent; then
        setup_consent "$n"
        for rep in $(seq 1 "$REPS"); do run_consent "$n" "$rep"; done
    fi
    if want purge; then
        setup_purge
        for rep in $(seq 1 "$REPS"); do run_purge "$n" "$rep"; done
    fi
    if want rotation; then for rep in $(seq 1 "$REPS"); do run_rotation "$rep"; done; fi
    report "$n" "$pgp_n" "$subj_n"
}

header() {
    local pgv osslv cpu
    pgv=$(sql -c "SHOW server_version")
    osslv=$(openssl version 2>/dev/null | awk '{print $1, $2}' || true)
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    echo
    echo "customer_vault $(sql -c "SELECT customer_vault.version()") benchmark: PostgreSQL $pgv, ${osslv:-OpenSSL ?}, $(nproc) CPU ${cpu:+($cpu)}"
    echo "medians of $REPS repetition(s); times inside the server (clock_timestamp), jit off, no parallel query"
    echo "rows: id bigint PK, email 25 B, phone 12 B, notes 200 B, created_at; context of every value = id::text"
    echo "OpenSSL AES-256-GCM floor per value (aead_floor.c, same EVP calls, 15 B AAD), us seal/open:" \
         "25 B $(fmt "${FLOOR_SEAL[25]}" 3)/$(fmt "${FLOOR_OPEN[25]}" 3)," \
         "12 B $(fmt "${FLOOR_SEAL[12]}" 3)/$(fmt "${FLOOR_OPEN[12]}" 3)," \
         "200 B $(fmt "${FLOOR_SEAL[200]}" 3)/$(fmt "${FLOOR_OPEN[200]}" 3)"
    echo "us/unit: per row (insert, read), per lookup, per value (rotation, 'per value' reads), per row removed (purge); +us/unit: over the baseline"
    if want purge; then
        echo "purge: two identical tables of n rows (customer_id bigint, created_at timestamptz, note 200 B), 10 rows a customer," \
             "30% past the 365-day retention on every page, customer $PURGE_HOLD under a legal hold; during each operation" \
             "pgbench inserts single rows into the same table at $PURGE_RATE/s (one session); order alternates between repetitions"
    fi
    [ "${BENCH_SECTIONS:-$ALL_SECTIONS}" = "$ALL_SECTIONS" ] || echo "sections: ${!WANT[*]}"
}

scaling_summary() {
    local sizes=("$@") k n first last
    echo
    echo "growth with table size (us per row, per lookup or per value; constant = linear growth)"
    printf '%-38s' "operation"
    for n in "${sizes[@]}"; do printf ' %12s' "$n rows"; done
    printf ' %12s\n' "last/first"
    local labels=(ins_plain "insert plaintext" ins_enc "insert encrypt() x3" ins_prot "insert transparent"
                  rd_plain "read plaintext" rd_cv "read decrypt() x3" rd_raw "read pgcrypto decrypt x3"
                  rd_view "read _decrypted view" lk_plain "lookup plaintext btree" lk_bidx "lookup blind index"
                  rot_enc "reencrypt (per value)" cs_plain "count(*) no RLS"
                  cs_pol "count(*) consent policy, warm" cs_pol_cold "count(*) consent policy, cold"
                  cs_txt "count(*) consent policy, text subj."
                  pg_delete "DELETE expired (per row removed)" pg_purge "purge() (per row removed)")
    local i
    for ((i = 0; i < ${#labels[@]}; i += 2)); do
        k=${labels[i]}
        # only the sections that ran
        [ -n "${PERROW[${sizes[0]}:$k]:-}" ] || continue
        printf '%-38s' "${labels[i+1]}"
        for n in "${sizes[@]}"; do printf ' %12s' "$(fmt "${PERROW[$n:$k]}" 2)"; done
        first=${PERROW[${sizes[0]}:$k]}; last=${PERROW[${sizes[${#sizes[@]}-1]}:$k]}
        printf ' %11sx\n' "$(fmt "$(calc "$last / $first")" 2)"
        for n in "${sizes[@]}"; do
            echo "\"$n\",\"$REPS\",\"scaling\",\"${labels[i+1]}\",\"\",\"\",\"${PERROW[$n:$k]}\",\"\",\"\",\"\",\"\",\"us per unit\"" >> "$CSV"
        done
    done
}

# ---------------------------------------------------------------- main
if [ "$SMOKE" != 1 ] && [ "$REPS" -lt 3 ]; then
    log "BENCH_REPS=$REPS: the issue asks for medians of at least 3 repetitions"
fi
setup_extension
measure_floor
if [ "$SCALING" = 1 ]; then
    read -r -a sizes <<<"${BENCH_SCALING_SIZES:-10000 100000 1000000}"
else
    sizes=("$ROWS")
fi
for n in "${sizes[@]}"; do
    run_suite "$n"
done
header
for n in "${sizes[@]}"; do
    echo
    echo "== $n rows"
    print_table "$n"
done
[ "$SCALING" = 1 ] && scaling_summary "${sizes[@]}"
echo
if [ "$SMOKE" = 1 ]; then
    echo "CSV: not kept (smoke run)"
else
    echo "CSV: $CSV"
fi
