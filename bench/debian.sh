#!/usr/bin/env bash
# Times `marqo-base debian rootfs` (resolve + fetch + unpack) of the Marqo system set for
# amd64 and arm64, cold and warm cache, against `mmdebstrap --variant=essential --include=...`
# (and --variant=required, the set ours builds from scratch: Essential plus Priority:required)
# for the same packages; prints wall time, peak RSS, tree sizes, the ratios, and how the two
# package sets differ.
#
#   bench/debian.sh          # BENCH_DIR=/tmp/x keeps the work dir; BENCH_SUITE (default bullseye)
#   BENCH_MM_VARIANTS=essential bench/debian.sh   # only the variant named
#   BENCH_BINFMT=1 bench/debian.sh   # also mmdebstrap for arm64 (registers qemu in binfmt_misc
#                                    # for the run and removes it afterwards; root only)
#
# The mirror is the host's: the first main-archive `deb` entry of /etc/apt/sources.list(.d).
# mmdebstrap is installed with apt-get when missing. Its cold run starts with an empty .deb
# cache; its warm run reuses the .debs of the cold one (sync-in/sync-out hooks, as its manual
# shows), so both tools re-read only the indexes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-debian.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"
suite=${BENCH_SUITE:-bullseye}
pkgs=(python3.9 ffmpeg redis-server openjdk-17-jre-headless libgomp1 libsndfile1 libmagic1 jq unzip tmux lsof ca-certificates)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
ours="$CARGO_TARGET_DIR/release/marqo-base"

# The host's main archive: URIs of a deb822 entry, else a one-line `deb` entry (options in
# brackets dropped); security and updates archives are skipped.
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { types = ""; uris = ""; suites = ""
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^Types:/) types = $i
                   if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                   if ($i ~ /^Suites:/) suites = $i }
               if (types ~ /[ \t]deb([ \t]|$)/ && suites !~ /-security/ && uris != "") { split(uris, u, " "); print u[1]; exit } }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 !~ /-security/ { print $2 }'
}
mirror=$(host_mirror | head -1 || true)
[ -n "$mirror" ] || { echo "no deb entry in this host's apt sources"; exit 2; }
echo "suite: $suite; packages: ${pkgs[*]}"

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
tree_mb() { du -sm "$1" 2>/dev/null | cut -f1; }

ours_rootfs() { # CACHE OUT ARCH...
    local cache=$1 out=$2; shift 2
    local a=(); for arch in "$@"; do a+=(--arch "$arch"); done
    rm -rf "${out/\{arch\}/amd64}" "${out/\{arch\}/arm64}"
    measure "$name" env MARQO_BASE_CACHE_DIR="$cache" "$ours" debian rootfs --suite "$suite" "${a[@]}" \
        --out "$out" "${pkgs[@]}"
}

echo "== marqo-base debian rootfs (cold: empty cache; warm: the same cache again)"
for target in amd64 arm64 both; do
    arches=("$target"); [ "$target" = both ] && arches=(amd64 arm64)
    cache="$work/cache-$target"
    rm -rf "$cache"
    name="ours-$target-cold" ours_rootfs "$cache" "$work/ours-$target-{arch}" "${arches[@]}"
    name="ours-$target-warm" ours_rootfs "$cache" "$work/ours-$target-{arch}" "${arches[@]}"
done
for log in "$work"/ours-*-cold.log "$work"/ours-*-warm.log; do
    printf '  %-26s %s\n' "$(basename "$log" .log)" "$(grep -h '^Done in' "$log" || echo '(failed)')"
done

if ! command -v mmdebstrap >/dev/null; then
    echo "== installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
        echo "cannot install mmdebstrap: skipping it"
fi
mm_arches=(amd64)
if [ "${BENCH_BINFMT:-0}" = 1 ]; then
    command -v arch-test >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends arch-test >/dev/null
    registered=0
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
        registered=1
    fi
    trap '[ "$registered" = 1 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64' EXIT
    mm_arches+=(arm64)
fi
# essential: Essential:yes and the --include closure (what the brief of this benchmark names);
# required: also Priority:required and apt, which is the set ours builds from scratch.
read -r -a variants <<< "${BENCH_MM_VARIANTS:-essential required}"
if command -v mmdebstrap >/dev/null; then
    echo "== mmdebstrap ($(mmdebstrap --version); variants ${variants[*]}; ${mm_arches[*]})"
    include=$(IFS=,; echo "${pkgs[*]}")
    for variant in "${variants[@]}"; do
        for arch in "${mm_arches[@]}"; do
            debs="$work/mm-debs-$variant-$arch"
            rm -rf "$debs"; mkdir -p "$debs"
            for run in cold warm; do
                rm -rf "$work/mm-$variant-$arch"
                measure "mm-$variant-$arch-$run" mmdebstrap --quiet --variant="$variant" --arch="$arch" \
                    --include="$include" --skip=download/empty \
                    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
                    --setup-hook="sync-in $debs /var/cache/apt/archives/" \
                    --customize-hook="sync-out /var/cache/apt/archives $debs" \
                    "$suite" "$work/mm-$variant-$arch" "deb [signed-by=$keyring] $mirror $suite main"
            done
        done
    done
fi

echo "== trees (MB on disk)"
for d in ours-amd64-amd64 ours-arm64-arm64; do
    printf '%-28s %8s MB\n' "$d" "$(tree_mb "$work/$d")"
done
for variant in "${variants[@]}"; do
    for arch in "${mm_arches[@]}"; do
        [ -d "$work/mm-$variant-$arch" ] && printf '%-28s %8s MB\n' "mm-$variant-$arch" "$(tree_mb "$work/mm-$variant-$arch")"
    done
done

echo "== ratios (ours / mmdebstrap; below 1 is faster)"
ratio() { awk -v a="$(secs "$1")" -v b="$(secs "$2")" -v n="$3" 'BEGIN { if (a && b) printf "%-58s %.2fx\n", n, a / b }'; }
for variant in "${variants[@]}"; do
    for arch in "${mm_arches[@]}"; do
        for run in cold warm; do
            ratio "ours-$arch-$run" "mm-$variant-$arch-$run" "$run $arch: ours / mmdebstrap $variant"
        done
    done
    for run in cold warm; do
        ratio "ours-both-$run" "mm-$variant-amd64-$run" "$run: ours amd64+arm64 / mmdebstrap $variant amd64 alone"
    done
done

echo "== same packages? (name=version from each tree's dpkg database; < ours, > mmdebstrap)"
list() { dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package}=${Version}\n' | sort; }
for variant in "${variants[@]}"; do
    for arch in "${mm_arches[@]}"; do
        [ -d "$work/mm-$variant-$arch" ] || continue
        d=$(diff <(list "$work/ours-$arch-$arch") <(list "$work/mm-$variant-$arch") | grep '^[<>]' || true)
        echo "$arch vs $variant: ours $(list "$work/ours-$arch-$arch" | wc -l), mmdebstrap $(list "$work/mm-$variant-$arch" | wc -l) packages; $(
            [ -z "$d" ] && echo same || echo "$(echo "$d" | wc -l) lines differ:")"
        [ -z "$d" ] || echo "$d" | head -40 | paste -sd' ' | fold -s -w 110 | sed 's/^/  /'
    done
done
echo "work dir: $work"
