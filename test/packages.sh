#!/usr/bin/env bash
# test/packages.sh: the Debian packages and the PGXN zip (behind `make deb`,
# `make dist` and `make test-packages`).
#
#   bash test/packages.sh deb OUT    dpkg-buildpackage -us -uc -b on a copy of
#                                    the tree (the checkout stays clean), for the
#                                    majors postgresql-common supports here
#                                    (PG_SUPPORTED_VERSIONS=17 narrows them); the
#                                    .deb/.changes/.buildinfo files into OUT, then
#                                    lintian when installed (errors fail)
#   bash test/packages.sh dist OUT   customer_vault-<version>.zip into OUT: git
#                                    archive of HEAD with the current version's
#                                    SQL scripts assembled in; META.json must
#                                    carry the control file's version
#   bash test/packages.sh test       per major (CV_PACKAGE_MAJORS, default
#                                    15 17 18), each step in a throwaway overlay
#                                    of the cached Debian root file system of its
#                                    release (test/rootfs.sh scratch): build the
#                                    package (+ lintian), `apt install ./x.deb`,
#                                    the autopkgtest (debian/tests/installcheck:
#                                    install, types, crypto on a fresh cluster),
#                                    `apt purge`, nothing left on disk; on 15
#                                    also the dist zip built with make, installed
#                                    with make install and tested.  One line per
#                                    check, then "N passed, N failed".  Root only.
#
# The inside-* modes are the steps run inside the root file system.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { printf '== %s\n' "$*" >&2; }
tmps=()
trap 'rm -rf "${tmps[@]}"' EXIT
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

VERSION=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" customer_vault.control)
[ -n "$VERSION" ] || die "no default_version in customer_vault.control"

# every file name a package or a source install may leave behind
find_ours() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /cv -o -path /out -o -path /tmp \) -prune \
        -o \( -iname '*customer_vault*' -o -iname '*customer-vault*' \) -print 2>/dev/null | sort
}

# a fresh random root key in a directory of its own, owned by the server's user
make_key() {
    local dir
    dir=$(mktemp -d)
    ( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/root.key" )
    [ "$(id -u)" -ne 0 ] || chown -R postgres "$dir"
    chmod 700 "$dir"; chmod 600 "$dir/root.key"
    echo "$dir/root.key"
}

# ---------- make deb ----------
build_deb() {
    local out=$1 tool tmp src debver changes errors
    for tool in dpkg-buildpackage dh pg_buildext; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install dpkg-dev debhelper postgresql-server-dev-all libssl-dev)"
    done
    [ -f /usr/share/postgresql-common/pgxs_debian_control.mk ] || die "postgresql-server-dev-all is missing"
    # the package's upstream version is the control file's
    debver=$(dpkg-parsechangelog -l debian/changelog -S Version)
    [ "${debver%-*}" = "$VERSION" ] \
        || die "debian/changelog is at ${debver%-*}, customer_vault.control at $VERSION: add a changelog entry $VERSION-1"
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    tmp=$(mktemp -d); tmps+=("$tmp")
    src=$tmp/customer-vault-$VERSION
    mkdir "$src"
    # the tree as it is, without build products and version-control data
    tar -C "$here" --exclude=.git --exclude=./build --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
        --exclude=./results --exclude=./tmp_check --exclude=./log -cf - . | tar -C "$src" -xf -
    log "dpkg-buildpackage -us -uc -b in $src (log: $out/build.log)"
    if ! (cd "$src" && PG_UPDATECONTROL=yes pg_buildext updatecontrol \
            && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
        tail -n 60 "$out/build.log"
        die "the package build failed"
    fi
    changes=$(ls "$tmp"/customer-vault_"$debver"_*.changes)
    # the artefacts the .changes lists, and the .changes itself
    local f
    for f in $(sed -n '/^Files:/,/^[^ ]/s/^ [0-9a-f]\{32\} [0-9]* [^ ]* [^ ]* //p' "$changes"); do
        mv -f "$tmp/$f" "$out/"
    done
    mv -f "$changes" "$out/"
    changes=$out/$(basename "$changes")
    ls -1 "$out"/*.deb
    if command -v lintian >/dev/null 2>&1; then
        lintian --version
        lintian -I "$changes" >"$out/lintian.txt" 2>&1 || true
        cat "$out/lintian.txt"
        errors=$(grep -c '^E: ' "$out/lintian.txt" || true)
        log "lintian: $errors errors, $(grep -c '^W: ' "$out/lintian.txt" || true) warnings ($out/lintian.txt)"
        [ "$errors" -eq 0 ] || die "lintian reports errors"
    else
        log "lintian is not installed: not run"
    fi
}

# ---------- make dist ----------
check_meta() {
    # META.json: valid JSON, the control file's version as release and provided version
    perl -MJSON::PP -e '
        my ($file, $v) = @ARGV;
        open my $fh, "<", $file or die "cannot read $file\n";
        my $m = eval { JSON::PP->new->decode(do { local $/; <$fh> }) } or die "$file is not valid JSON: $@";
        my @bad;
        push @bad, "version $m->{version}" if ($m->{version} // "") ne $v;
        push @bad, "provides.customer_vault.version " . ($m->{provides}{customer_vault}{version} // "none")
            if ($m->{provides}{customer_vault}{version} // "") ne $v;
        push @bad, "name $m->{name}" if ($m->{name} // "") ne "customer_vault";
        push @bad, "meta-spec " . ($m->{"meta-spec"}{version} // "none") if ($m->{"meta-spec"}{version} // "") ne "1.0.0";
        die "$file does not match customer_vault.control ($v): @bad\n" if @bad;
    ' "$1" "$VERSION"
}

build_dist() {
    local out=$1 tmp top zip u name bad
    command -v git >/dev/null 2>&1 || die "git is missing"
    command -v zip >/dev/null 2>&1 || die "zip is missing (apt-get install zip)"
    git -C "$here" rev-parse --verify -q HEAD >/dev/null || die "not a git checkout"
    # the zip is HEAD: uncommitted work is not in it
    if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
        log "warning: uncommitted changes are not in the zip (it is made from HEAD)"
    fi
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    top=customer_vault-$VERSION
    zip=$out/$top.zip
    tmp=$(mktemp -d); tmps+=("$tmp")
    # tar.umask 0022: git's default (0002) leaves files 664 and directories
    # 775 in the archive, and so group-writable in the zip
    git -C "$here" -c tar.umask=0022 archive --format=tar --prefix="$top/" HEAD | (umask 022 && tar -C "$tmp" -xf -)
    # HEAD's control file and META.json must agree
    [ "$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$tmp/$top/customer_vault.control")" = "$VERSION" ] \
        || die "the committed customer_vault.control is not at $VERSION: commit it first"
    check_meta "$tmp/$top/META.json"
    # the current version's scripts, assembled now (a released zip builds with
    # make alone; they are newer than their sources, so make keeps them)
    umask 022
    bash "$tmp/$top/sql/assemble.sh" install "$VERSION" > "$tmp/$top/sql/customer_vault--$VERSION.sql"
    for u in "$tmp/$top"/sql/upgrade/*--"$VERSION".sql; do
        [ -e "$u" ] || continue
        name=$(basename "$u")
        bash "$tmp/$top/sql/assemble.sh" upgrade "sql/upgrade/$name" > "$tmp/$top/sql/customer_vault--$name"
    done
    rm -f "$zip"
    (cd "$tmp" && zip -q -r -X "$zip" "$top")
    # no entry writable by anyone but its owner (zipinfo: -rw-r--r--, drwxr-xr-x)
    bad=$(zipinfo "$zip" | awk 'length($1) == 10 && $1 ~ /^[-dl]/ && (substr($1, 6, 1) == "w" || substr($1, 9, 1) == "w") {print $1, $NF}')
    [ -z "$bad" ] || die "group- or world-writable entries in $zip: $(echo "$bad" | head -n 3 | tr '\n' ' ')"
    log "$zip ($(unzip -l "$zip" | tail -n 1 | awk '{print $2}') files)"
    echo "$zip"
}

# ---------- inside a root file system ----------
inside_build() {
    local m=$1
    export DEBIAN_FRONTEND=noninteractive PG_SUPPORTED_VERSIONS=$m
    log "PostgreSQL $m: installing the build dependencies and lintian"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends build-essential debhelper dpkg-dev postgresql-server-dev-all libssl-dev \
        lintian make >/dev/null
    make -C /cv -s deb DEB_OUT=/out/deb
}

inside_install() {
    local m=$1 deb pkg list before after f leftover=0 ext
    export DEBIAN_FRONTEND=noninteractive
    pkg=postgresql-$m-customer-vault
    deb=$(ls /out/deb/"$pkg"_*.deb)
    [ "$(wc -w <<<"$deb")" = 1 ] || die "expected one $pkg package in /out/deb, found: $deb"
    before=$(find_ours)
    [ -z "$before" ] || die "files of the extension exist before the install: $before"
    # the directories of the package that exist already (/usr/lib/postgresql/M/lib, ...):
    # the only paths of its list that may exist after the purge
    local predirs
    predirs=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||; s|^$|/|' \
              | while IFS= read -r f; do [ -d "$f" ] && echo "$f"; done; echo /.)

    log "apt-get install ./$(basename "$deb")"
    cp "$deb" /tmp/
    apt-get install -y -q "/tmp/$(basename "$deb")" 2>&1 | grep -E '^(Setting up|Unpacking|E:)' || true
    dpkg-query -W -f='${Status}\n' "$pkg" | grep -q 'install ok installed' || die "$pkg is not installed"
    list=$(dpkg -L "$pkg")
    printf '%s\n' "$list" > /out/dpkg-L-$m.txt

    # what it ships: the library, the control file, the install script of the
    # current version, every committed script and every upgrade script
    ext=/usr/share/postgresql/$m/extension
    for f in /usr/lib/postgresql/$m/lib/customer_vault.so $ext/customer_vault.control \
             $ext/customer_vault--$VERSION.sql /usr/share/doc/$pkg/copyright; do
        grep -qxF "$f" <<<"$list" || die "$pkg lacks $f"
    done
    for f in sql/customer_vault--*.sql; do
        grep -qxF "$ext/$(basename "$f")" <<<"$list" || die "$pkg lacks $ext/$(basename "$f")"
    done
    for f in sql/upgrade/*--"$VERSION".sql; do
        [ -e "$f" ] || continue
        grep -qxF "$ext/customer_vault--$(basename "$f")" <<<"$list" || die "$pkg lacks the upgrade script $(basename "$f")"
    done
    # and nothing else of ours on disk (no key, no configuration, no cluster)
    after=$(find_ours | grep -vxF -f <(printf '%s\n' "$list") | grep -v "^/var/lib/dpkg/info/$pkg\." || true)
    [ -z "$after" ] || die "the install left files dpkg -L does not list: $after"
    if find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /cv -o -path /out -o -path /tmp \) -prune \
            -o -newer /tmp/"$(basename "$deb")" -name '*.key' -print 2>/dev/null | grep -q .; then
        die "a key file appeared with the install"
    fi

    # what autopkgtest installs first: debian/tests/control's Depends but "@"
    local deps
    deps=$(sed -n '/^Depends:/,/^[A-Z]/p' debian/tests/control | sed '1s/^Depends://; /^[A-Z]/d' \
           | tr ',\n' '  ' | xargs -n1 | grep -vx '@' | tr '\n' ' ')
    log "the autopkgtest's dependencies: $deps"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $deps >/dev/null
    log "the autopkgtest (debian/tests/installcheck) against the installed package"
    (cd /cv && debian/tests/installcheck) || die "debian/tests/installcheck failed"

    # proof that the checks below bite: a stray file of the extension's name
    # (bash test/rootfs.sh scratch M OUT env CV_PACKAGES_FAULT=leftover bash /cv/test/packages.sh inside-install M)
    if [ "${CV_PACKAGES_FAULT:-}" = leftover ]; then
        touch "$ext/customer_vault--0.0.1.sql"
    fi
    log "apt-get purge $pkg"
    apt-get purge -y -q "$pkg" 2>&1 | grep -E '^(Removing|Purging|E:)' || true
    if dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qv 'not-installed'; then
        die "$pkg is still known to dpkg after the purge: $(dpkg-query -W -f='${Status}' "$pkg")"
    fi
    # every path of the list gone, but for directories that existed before
    while IFS= read -r f; do
        [ -e "$f" ] || continue
        if [ -d "$f" ] && [ ! -L "$f" ] && grep -qxF "$f" <<<"$predirs"; then
            continue
        fi
        echo "left after the purge: $f" >&2
        leftover=1
    done <<<"$list"
    after=$(find_ours)
    [ -z "$after" ] || { echo "left after the purge: $after" >&2; leftover=1; }
    [ $leftover = 0 ] || die "the purge left files of the extension on disk"
    log "PostgreSQL $m: installed, tested and purged; nothing left"
}

inside_dist() {
    local m=$1 dir key pgc
    pgc=/usr/lib/postgresql/$m/bin/pg_config
    dir=$(ls -d /out/dist/customer_vault-*/)
    cd "$dir"
    log "the dist zip: make, make install (PostgreSQL $m), make installcheck"
    make -s PG_CONFIG="$pgc" >/out/dist-build.log 2>&1 || { tail -n 40 /out/dist-build.log; die "make failed"; }
    make -s PG_CONFIG="$pgc" install >>/out/dist-build.log 2>&1 || { tail -n 40 /out/dist-build.log; die "make install failed"; }
    [ -f "/usr/share/postgresql/$m/extension/customer_vault--$VERSION.sql" ] || die "make install did not install the $VERSION script"
    key=$(make_key)
    NONROOT=1 pg_virtualenv -v "$m" -o shared_preload_libraries=customer_vault -o "customer_vault.root_key_file=$key" \
        make installcheck PG_CONFIG="$pgc" REGRESS_SET=package \
        || { cat regression.diffs 2>/dev/null | head -c 20000; die "installcheck failed"; }
}

# ---------- make test-packages ----------
test_packages() {
    [ "$(id -u)" -eq 0 ] || die "the package tests need root (debootstrap, chroot, apt)"
    local work passed=0 failed=0 m out zip
    work=$(mktemp -d /tmp/customer_vault-packages.XXXXXX); tmps+=("$work")
    local need=() p
    for p in zip unzip debootstrap; do
        command -v "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    for m in ${CV_PACKAGE_MAJORS:-15 17 18}; do
        out=$work/$m
        mkdir -p "$out"
        log "PostgreSQL $m: the package, in throwaway copies of a Debian root file system"
        if bash test/rootfs.sh scratch "$m" "$out" bash /cv/test/packages.sh inside-build "$m" \
           && bash test/rootfs.sh scratch "$m" "$out" bash /cv/test/packages.sh inside-install "$m"; then
            echo "== PostgreSQL $m package: ok"
            passed=$((passed + 1))
        else
            echo "== PostgreSQL $m package: FAILED"
            failed=$((failed + 1))
        fi
        if [ "$m" = 15 ]; then
            log "PostgreSQL $m: the dist zip"
            if zip=$(build_dist "$out" | tail -n 1) && mkdir -p "$out/dist" && unzip -q "$zip" -d "$out/dist" \
               && bash test/rootfs.sh scratch "$m" "$out" bash /cv/test/packages.sh inside-dist "$m"; then
                echo "== PostgreSQL $m dist zip: ok"
                passed=$((passed + 1))
            else
                echo "== PostgreSQL $m dist zip: FAILED"
                failed=$((failed + 1))
            fi
        fi
    done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

case "${1:-}" in
    deb) build_deb "${2:?usage: $0 deb OUTDIR}" ;;
    dist) build_dist "${2:?usage: $0 dist OUTDIR}" >/dev/null ;;
    test) test_packages ;;
    inside-build) inside_build "$2" ;;
    inside-install) inside_install "$2" ;;
    inside-dist) inside_dist "$2" ;;
    *) echo "usage: $0 deb OUT | dist OUT | test" >&2; exit 2 ;;
esac
