#!/usr/bin/env bash
# test/citus/build.sh: build Citus from a source directory against one
# PostgreSQL, outside this repository, and cache the result.
#
#   bash test/citus/build.sh CITUS_SRC PG_CONFIG
#
# prints the directory that holds the installed files (a DESTDIR tree such as
# DIR/usr/lib/postgresql/15/lib/citus.so), to be copied over a private copy of
# PostgreSQL.  The build lives in $CITUS_CACHE (default
# /var/cache/customer_vault/citus-build), keyed by the Citus version, the
# PostgreSQL version and a hash of this script, and is reused when present.
# Citus's build dependencies (autoconf, flex, bison, -dev packages of curl,
# lz4, zstd, krb5, selinux, xslt, pam, readline, ssl, icu) are installed with
# apt-get when missing and this runs as root.
set -euo pipefail

src=${1:?usage: build.sh CITUS_SRC PG_CONFIG}
pg_config=${2:?usage: build.sh CITUS_SRC PG_CONFIG}
src=$(cd "$src" && pwd)
[ -f "$src/configure.ac" ] && grep -q 'AC_INIT(\[Citus\]' "$src/configure.ac" || {
    echo "build.sh: $src is not a Citus source directory" >&2; exit 2; }

log() { printf '== %s\n' "$*" >&2; }

deps=(autoconf flex bison libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev
      libxslt1-dev libpam0g-dev libreadline-dev libssl-dev libicu-dev make gcc)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "build.sh: missing packages: ${missing[*]}" >&2; exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

citus_version=$(sed -n 's/^AC_INIT(\[Citus\], \[\([^]]*\)\]).*/\1/p' "$src/configure.ac")
pg_version=$("$pg_config" --version | sed 's/^PostgreSQL //; s/ .*//')
pg_major=${pg_version%%.*}
script_hash=$(sha256sum "$0" | cut -c1-12)
cache=${CITUS_CACHE:-/var/cache/customer_vault/citus-build}
dir=$cache/citus-$citus_version-pg$pg_version-$script_hash
if [ -f "$dir/done" ]; then
    echo "$dir/dest"
    exit 0
fi

log "building Citus $citus_version against PostgreSQL $pg_version in $dir (a few minutes)"
rm -rf "$dir"
mkdir -p "$dir"
# a copy: the source directory given is never written
cp -a "$src" "$dir/src"
cd "$dir/src"

# Debian's PostgreSQL 15 headers (15.20 and later) already declare
# have_createdb_privilege() (backported to dbcommands.h), which Citus 13's
# compatibility header redefines as a static function for PostgreSQL < 16:
# rename Citus's copy when the server headers carry the real one.
incdir=$("$pg_config" --includedir-server)
if grep -q 'have_createdb_privilege' "$incdir/commands/dbcommands.h" 2>/dev/null \
   && [ "$pg_major" -lt 16 ] \
   && grep -q '^have_createdb_privilege(void)' src/include/pg_version_compat.h; then
    log "local fix: have_createdb_privilege is declared by the server headers"
    sed -i 's/^have_createdb_privilege(void)$/citus_unused_have_createdb_privilege(void)/' \
        src/include/pg_version_compat.h
fi

{
    ./configure PG_CONFIG="$pg_config" --without-security-flags
    make -j"${CITUS_JOBS:-2}"
    make install DESTDIR="$dir/dest"
} >"$dir/build.log" 2>&1 || {
    tail -n 60 "$dir/build.log" >&2
    echo "build.sh: the Citus build failed (log: $dir/build.log)" >&2
    exit 1
}
touch "$dir/done"
echo "$dir/dest"
