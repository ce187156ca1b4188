#!/usr/bin/env bash
# sql/assemble.sh: builds the install script of the current version and the
# upgrade scripts into it from the SQL sources (called by the Makefile).
#
#   bash sql/assemble.sh install VERSION               > sql/customer_vault--VERSION.sql
#   bash sql/assemble.sh upgrade sql/upgrade/A--B.sql  > sql/customer_vault--A--B.sql
#   bash sql/assemble.sh released TARGET NEW     moves NEW to TARGET, unless TARGET
#                         is a committed (released) script that NEW would change
#
# sql/src/NN_<concern>.sql hold one concern each (keys, columns, consent, ...),
# in install order.  Marker lines split them:
#   --@ schema   what only a fresh install creates: types, tables, sequences,
#                indexes, event triggers (an upgrade changes these by hand)
#   --@ code     what every upgrade replays as it stands: CREATE OR REPLACE of
#                functions, procedures, views and triggers, comments, grants
# sql/upgrade/A--B.sql is the hand-written part of an upgrade (new tables,
# ALTERs, DROPs of functions whose signature changed); its line
# "--@ replay" is replaced by every code section of sql/src.
# A released script is never edited: once a version's scripts are committed,
# the build refuses to assemble them differently; change sql/src only after
# bumping the version in customer_vault.control (and add the upgrade source
# sql/upgrade/OLD--NEW.sql).
set -euo pipefail
cd "$(dirname "$0")"

guard() {
    printf '/* customer_vault %s (assembled from sql/src by sql/assemble.sh; do not edit) */\n\n' "$1"
    printf '\\echo Use "%s" to load this file. \\quit\n' "$2"
}

# the code sections of every source, in order
replay() {
    local f
    for f in src/[0-9]*.sql; do
        printf '\n-- ==== %s (replayed) ====\n' "${f#src/}"
        awk '/^--@ schema/ { code = 0; next } /^--@ code/ { code = 1; next } code' code=1 "$f"
    done
}

case "${1:-}" in
    install)
        guard "$2" 'CREATE EXTENSION customer_vault'
        for f in src/[0-9]*.sql; do
            printf '\n-- ==== %s ====\n' "${f#src/}"
            grep -v '^--@ \(schema\|code\)' "$f"
        done
        ;;
    upgrade)
        src=$2
        name=$(basename "$src" .sql)
        guard "$name" 'ALTER EXTENSION customer_vault UPDATE TO '"'${name#*--}'"
        while IFS= read -r line; do
            if [ "$line" = "--@ replay" ]; then
                replay
            else
                printf '%s\n' "$line"
            fi
        done < "${src#sql/}"
        ;;
    released)
        target=${2#sql/}
        new=${3#sql/}
        if [ -f "$target" ] && ! cmp -s "$target" "$new" &&
           git ls-files --error-unmatch "$target" >/dev/null 2>&1; then
            rm -f "$new"
            echo "error: sql/$target is a released script and the SQL sources would change it" >&2
            echo "hint: bump default_version in customer_vault.control and add sql/upgrade/OLD--NEW.sql" >&2
            exit 1
        fi
        mv "$new" "$target"
        ;;
    *)
        echo "usage: $0 install VERSION | upgrade sql/upgrade/A--B.sql" >&2
        exit 2
        ;;
esac
