#!/usr/bin/env bash
# test/rootfs.sh: a Debian root file system holding one PostgreSQL major, for
# running the test suite on a major the host does not package.
#
#   bash test/rootfs.sh release MAJOR    the Debian release it uses (fails: none)
#   bash test/rootfs.sh path MAJOR       build it if missing or stale, print its path
#   bash test/rootfs.sh run MAJOR CMD..  run CMD (as root) inside it, with the
#                                        source tree copied to /cv (see below);
#                                        CV_CITUS_SRC=DIR: a Citus source tree
#                                        at /citus-src (read only) and the host's
#                                        Citus build cache at its own path
#   bash test/rootfs.sh scratch MAJOR OUT CMD..
#                                        the same in a throwaway overlay of it:
#                                        whatever CMD installs or changes is
#                                        gone afterwards; the host directory
#                                        OUT is mounted at /out (the package
#                                        tests: test/packages.sh)
#
# The root file systems are made with debootstrap from Debian's own packages:
# 15 from bookworm (only for the package tests: the suite runs 15 on the
# host), 17 from trixie, 18 from forky (bookworm's debootstrap has no forky script, so
# sid's is used).  They are cached under $CV_ROOTFS_CACHE (default
# /var/cache/customer_vault), one directory rootfs-<release> each (about
# 1.5 GB), and rebuilt when their package list (the stamp file .cv-packages)
# changes.  The Debian packages would create and start a cluster on install:
# createcluster.conf says create_main_cluster = false and a policy-rc.d denies
# every start.  Every mount (/proc, /dev, /dev/shm) is made in a private mount
# and PID namespace (unshare -m -p -f), so nothing stays mounted on the host
# and no process outlives the run.  Root only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CV_ROOTFS_CACHE:-/var/cache/customer_vault}
MIRROR=${CV_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '== %s\n' "$*" >&2; }

release_of() {
    case "$1" in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo forky ;;
        *) echo "no root file system is defined for PostgreSQL $1 (15, 17, 18)" >&2; exit 2 ;;
    esac
}

# what the suite needs inside (the same list test/run.sh installs on the host)
packages_of() {
    local m=$1
    echo "postgresql-$m postgresql-server-dev-$m postgresql-$m-cron libipc-run-perl libssl-dev make gcc libc6-dev perl"
}

# ---------- mounts and the chroot, inside a private namespace ----------
# in_root ROOT CMD...: run CMD chrooted into ROOT with /proc, /dev, /dev/shm
# mounted, in new mount and PID namespaces: when CMD ends, every process it
# started is killed and every mount disappears with the namespace.
in_root() {
    local root=$1; shift
    unshare -m -p -f --propagation private -- bash -c '
        set -e
        root=$1; shift
        if [ -n "${CV_SCRATCH:-}" ]; then
            # a throwaway overlay: the cached tree is only read
            mkdir -p "$CV_SCRATCH/upper" "$CV_SCRATCH/work" "$CV_SCRATCH/merged"
            mount -t overlay overlay \
                -o "lowerdir=$root,upperdir=$CV_SCRATCH/upper,workdir=$CV_SCRATCH/work" "$CV_SCRATCH/merged"
            root=$CV_SCRATCH/merged
        fi
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=1777,size=1g tmpfs "$root/dev/shm"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        [ -d "$root/cv" ] || mkdir "$root/cv"
        if [ -n "${CV_SRC:-}" ]; then
            mount -t tmpfs tmpfs "$root/cv"
            # the source tree without its build products (the host may be building in it)
            tar -C "$CV_SRC" --exclude=.git --exclude="*.o" --exclude="*.so" --exclude="*.bc" \
                --exclude=./results --exclude=./tmp_check -cf - . | tar -C "$root/cv" -xf -
        fi
        if [ -n "${CV_CITUS_SRC:-}" ]; then
            # a Citus source tree (read only: build.sh copies it) and the
            # host'"'"'s Citus build cache, where build.sh keeps the builds made
            # inside (keyed by the PostgreSQL version: no clash with the host'"'"'s)
            mkdir -p "$root/citus-src" "$root/var/cache/customer_vault/citus-build" \
                "${CV_CITUS_CACHE:-/var/cache/customer_vault/citus-build}"
            mount --bind "$CV_CITUS_SRC" "$root/citus-src"
            mount -o remount,bind,ro "$root/citus-src"
            mount --bind "${CV_CITUS_CACHE:-/var/cache/customer_vault/citus-build}" \
                "$root/var/cache/customer_vault/citus-build"
        fi
        if [ -n "${CV_OUT:-}" ]; then
            mkdir -p "$root/out"
            mount --bind "$CV_OUT" "$root/out"
        fi
        if [ -n "${CV_APT_ARCHIVES:-}" ]; then
            # downloaded packages kept between throwaway runs
            mount --bind "$CV_APT_ARCHIVES" "$root/var/cache/apt/archives"
        fi
        cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LANG=C.UTF-8 TERM=dumb "$@"
    ' in_root "$root" "$@"
}

# ---------- build ----------
build() {
    local m=$1 rel root stamp want tmp script
    rel=$(release_of "$m")
    root=$CACHE/rootfs-$rel
    stamp="release=$rel major=$m packages=$(packages_of "$m")"
    if [ -f "$root/.cv-packages" ] && [ "$(cat "$root/.cv-packages")" = "$stamp" ]; then
        echo "$root"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || { echo "building a root file system needs root" >&2; exit 1; }
    mkdir -p "$CACHE"
    # one build at a time per release; whoever waited finds it built
    exec 9>"$CACHE/.lock-$rel"
    flock 9
    if [ -f "$root/.cv-packages" ] && [ "$(cat "$root/.cv-packages")" = "$stamp" ]; then
        exec 9>&-
        echo "$root"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || {
        log "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    tmp=$CACHE/.rootfs-$rel.new
    rm -rf "$tmp"
    script=/usr/share/debootstrap/scripts/$rel
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    log "debootstrap $rel into $tmp (once; cached in $root)"
    # debootstrap mounts /proc and /sys in the target itself: in a namespace of its own too
    unshare -m -p -f --propagation private -- debootstrap --variant=minbase --components=main "$rel" "$tmp" "$MIRROR" "$script" >"$CACHE/debootstrap-$rel.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap-$rel.log"; exit 1; }
    # the mirror's index of a testing release can be past its Valid-Until date
    echo 'Acquire::Check-Valid-Until "false";' > "$tmp/etc/apt/apt.conf.d/99cv-valid-until"
    echo 'APT::Install-Recommends "false";' > "$tmp/etc/apt/apt.conf.d/99cv-no-recommends"
    # never start a service inside
    printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    log "installing $(packages_of "$m") into it"
    in_root "$tmp" bash -c '
        set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql-common >/dev/null
        mkdir -p /etc/postgresql-common/createcluster.d
        sed -i "s/^#* *create_main_cluster.*/create_main_cluster = false/" /etc/postgresql-common/createcluster.conf
        grep -q "^create_main_cluster = false" /etc/postgresql-common/createcluster.conf \
            || echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
        apt-get install -y -qq '"$(packages_of "$m")"' >/dev/null
        apt-get clean
        rm -rf /var/lib/apt/lists/*
    ' >"$CACHE/install-$rel.log" 2>&1 || { tail -n 30 "$CACHE/install-$rel.log"; exit 1; }
    if ls "$tmp/var/lib/postgresql/$m" 2>/dev/null | grep -q .; then
        echo "a cluster was created in the root file system" >&2; exit 1
    fi
    echo "$stamp" > "$tmp/.cv-packages"
    rm -rf "$root"
    mv "$tmp" "$root"
    exec 9>&-
    echo "$root"
}

case "${1:-}" in
    release)
        # 15 runs on the host (test/run.sh asks here whether to use a root
        # file system): its bookworm tree serves the package tests only
        [ "$2" != 15 ] || { echo "PostgreSQL 15 runs on the host (Debian 12)" >&2; exit 2; }
        release_of "$2"
        ;;
    path)
        build "$2"
        ;;
    run)
        # CV_CITUS_SRC (a Citus source directory on the host): mounted at
        # /citus-src inside, with the host's Citus build cache
        m=$2; shift 2
        root=$(build "$m")
        CV_SRC=$here in_root "$root" "$@"
        ;;
    scratch)
        m=$2; out=$3; shift 3
        root=$(build "$m")
        mkdir -p "$out" "$CACHE/apt-archives-$(release_of "$m")/partial"
        scratch=$(mktemp -d "$CACHE/.scratch-$m.XXXXXX")
        rc=0
        CV_SRC=$here CV_SCRATCH=$scratch CV_OUT=$(cd "$out" && pwd) \
            CV_APT_ARCHIVES=$CACHE/apt-archives-$(release_of "$m") in_root "$root" "$@" || rc=$?
        rm -rf "$scratch"
        exit $rc
        ;;
    *)
        echo "usage: $0 release MAJOR | path MAJOR | run MAJOR CMD... | scratch MAJOR OUT CMD..." >&2
        exit 2
        ;;
esac
