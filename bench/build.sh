#!/usr/bin/env bash
# Build benchmark: the flagship image (examples/marqo-base) from a warm download cache, next to
# `pigz` compressing the same bytes (the compression limit on this machine), and a rebuild
# after one package bump (served from the layer cache but for that package's layer).
#
#   bash bench/build.sh                 # linux/amd64
#   BENCH_PLATFORMS="linux/amd64 linux/arm64" bash bench/build.sh
#   BENCH_DIR=/tmp/b bash bench/build.sh   # keep the work directory (and its caches)
#
# Needs the live package index and Debian mirror the first time (to fill the download cache),
# pigz, and GNU time. Prints one line per measurement and the ratios; nothing is asserted.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/lib.sh"
work=${BENCH_DIR:-$(mktemp -d /tmp/marqo-base-bench-build.XXXXXX)}
mkdir -p "$work"
results=$work/results.txt
: > "$results"
platforms=${BENCH_PLATFORMS:-linux/amd64}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}
export MARQO_BASE_CACHE_DIR=$work/cache
command -v pigz > /dev/null || { echo "bench/build.sh needs pigz (apt-get install pigz)"; exit 2; }

(cd "$here" && cargo build --release -q -p marqo-base)
bin=$CARGO_TARGET_DIR/release/marqo-base

# A copy of the flagship, so the bump below does not touch the repository.
rm -rf "$work/flagship" && cp -r "$here/examples/marqo-base" "$work/flagship"
manifest=$work/flagship/marqo-base.toml
platform_args=()
for p in $platforms; do platform_args+=(--platform "$p"); done

echo "== flagship, $platforms, $(nproc) cores, work in $work"
# 1. Fill the download cache (and the layer cache): not the measured build.
rm -rf "$work/cold"
measure cold-build "$bin" build --manifest "$manifest" --oci "$work/cold" "${platform_args[@]}"

# 2. Every layer built again from the warm download cache (--no-cache skips the layer cache).
rm -rf "$work/warm"
measure warm-build-no-layer-cache "$bin" build --manifest "$manifest" --oci "$work/warm" --no-cache "${platform_args[@]}"

# 3. pigz on the same bytes: the uncompressed tar streams of every layer of the image.
layers=$(python3 - "$work/warm" <<'EOF'
import json, sys, os
root = sys.argv[1]
blob = lambda d: os.path.join(root, "blobs", "sha256", d.split(":")[1])
index = json.load(open(os.path.join(root, "index.json")))
for ref in index["manifests"]:
    for m in json.load(open(blob(ref["digest"])))["manifests"]:
        for layer in json.load(open(blob(m["digest"])))["layers"]:
            print(blob(layer["digest"]))
EOF
)
# shellcheck disable=SC2086
zcat $layers > "$work/layers.tar"
echo "uncompressed layer bytes: $(( $(stat -c %s "$work/layers.tar") / 1000000 )) MB" | tee -a "$results"
measure pigz-6 sh -c "pigz -6 -c '$work/layers.tar' > '$work/layers.tar.gz'"
measure gzip-6-single-thread sh -c "gzip -6 -c '$work/layers.tar' > /dev/null"
rm -f "$work/layers.tar" "$work/layers.tar.gz"

# 4. A rebuild with every layer in the cache, then after one package bump.
rm -rf "$work/again"
measure rebuild-unchanged "$bin" build --manifest "$manifest" --oci "$work/again" "${platform_args[@]}"
sed -i 's/^semver==3.0.2$/semver==3.0.1/' "$work/flagship/requirements-default-index.in"
"$bin" lock --manifest "$manifest" -P semver --exclude-newer "$(cat "$work/flagship/exclude-newer")" > "$work/bump-lock.log" 2>&1
grep -q 'name = "semver"' "$work/flagship/marqo-base.lock"
rm -rf "$work/bumped"
measure rebuild-after-bump "$bin" build --manifest "$manifest" --oci "$work/bumped" "${platform_args[@]}"
grep -h "Reusing" "$work/rebuild-after-bump.log" || true

echo
awk -v b="$(secs warm-build-no-layer-cache)" -v p="$(secs pigz-6)" -v g="$(secs gzip-6-single-thread)" 'BEGIN {
    printf "full build / pigz: %.2fx (target <= 1.2)\n", b / p
    printf "full build / single-thread gzip: %.2fx\n", b / g
}'
echo "rebuild after one bump: $(secs rebuild-after-bump) s (target <= 2)"
du -sh "$work/warm" | awk '{print "image layout size: " $1}'
