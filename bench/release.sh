#!/usr/bin/env bash
# The flagship released from an empty runner disk after a one-package bump, with the layer
# cache in the registry against without it: wall time, bytes downloaded (what the runner's
# cache holds of downloads at the end), bytes uploaded (as the push reports them), peak disk
# (the runner's cache directory, polled; it holds the scratch layout too) and peak memory.
# Downloaded bytes are what the run's own "Fetched" lines report (.debs, wheels, sdists).
#
#   bench/release.sh                   # ROUNDS=1: a run without the cache downloads ~3 GB
#   ROUNDS=3 BENCH_DIR=/tmp/x bench/release.sh
#   SEED_CACHE=~/.cache/marqo-base bench/release.sh   # the seeding runner reuses a warm cache
#
# A local docker-registry holds the release before the bump (`marqo-base:1`, pushed by a
# seeding runner that also writes the cache repository `cache`). Each timed round starts with
# an empty cache directory and pushes the bumped lock to a fresh repository that already holds
# release 1 (mounted in, untimed), as a real release finds the previous one: with the cache
# (`--cache`) and without, interleaved. The bump is `requests` 2.28.1 -> 2.28.2 in the
# flagship's requirements, locked with the flagship's upload cutoff. Uses the live index and
# Debian mirror (what the flagship locks against); needs docker-registry and skopeo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-release.XXXXXX)}
rounds=${ROUNDS:-1}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap stop_registry EXIT

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
mb="$CARGO_TARGET_DIR/release/marqo-base"
results="$work/results.txt"
: > "$results"

project="$work/project"
rm -rf "$project"
cp -r "$root/examples/marqo-base" "$project"
manifest="$project/marqo-base.toml"

start_registry release
reg="127.0.0.1:$port"
echo "registry $reg; $(nproc) cores; $("$mb" --version)"

echo "== seeding: release 1 and the layer cache (untimed)"
seed_cache=${SEED_CACHE:-$work/cache-seed}
MARQO_BASE_CACHE_DIR="$seed_cache" "$mb" build --manifest "$manifest" --oci "$work/release-1" \
    --cache "$reg/cache" --cache-write > "$work/seed-build.log" 2>&1 || { tail -20 "$work/seed-build.log"; exit 1; }
MARQO_BASE_CACHE_DIR="$seed_cache" "$mb" push "$reg/marqo-base" --oci "$work/release-1" --mount-from cache --tag 1 --yes -q \
    > "$work/seed-push.log" 2>&1 || { tail -20 "$work/seed-push.log"; exit 1; }
grep -h "Layer cache\|Wrote" "$work/seed-build.log" | sed 's/^/  /'

echo "== the bump: requests 2.28.1 -> 2.28.2 (lock, untimed)"
sed -i 's/^requests==2.28.1$/requests==2.28.2/' "$project/requirements-default-index.in"
MARQO_BASE_CACHE_DIR="$seed_cache" "$mb" lock --manifest "$manifest" --exclude-newer "$(cat "$project/exclude-newer")" \
    > "$work/lock.log" 2>&1 || { tail -20 "$work/lock.log"; exit 1; }
grep -A1 'name = "requests"' "$project/marqo-base.lock" | sed 's/^/  /'
# What the bump changes, from a local build of the bumped lock with the seed's warm cache.
MARQO_BASE_CACHE_DIR="$seed_cache" "$mb" build --manifest "$manifest" --oci "$work/release-2" \
    > "$work/local-2.log" 2>&1 || { tail -20 "$work/local-2.log"; exit 1; }
MARQO_BASE_CACHE_DIR="$seed_cache" "$mb" diff "$root/examples/marqo-base/marqo-base.lock" "$project/marqo-base.lock" \
    --manifest "$manifest" > "$work/diff.txt" 2>&1 || true
changed_bytes=$(python3 - "$work/release-1" "$work/release-2" <<'PY'
import json, os, sys
def layers(d):
    blob = lambda g: json.load(open(os.path.join(d, "blobs/sha256", g.split(":")[1])))
    index = blob(json.load(open(os.path.join(d, "index.json")))["manifests"][0]["digest"])
    out = {}
    for m in index["manifests"]:
        for l in blob(m["digest"])["layers"]:
            out[l["digest"]] = l["size"]
    return out
old, new = layers(sys.argv[1]), layers(sys.argv[2])
print(sum(size for digest, size in new.items() if digest not in old))
PY
)
local2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/release-2/index.json")
echo "  changed layers: $((changed_bytes / 1024)) KiB in all; a local build of the bump: index $local2"

# `run MODE N`: one timed release from an empty disk into a repository holding release 1.
run() {
    local mode=$1 n=$2 repo="r$2-$1" cache="$work/runner-$1-$2"
    rm -rf "$cache"; mkdir -p "$cache"
    MARQO_BASE_CACHE_DIR="$work/cache-mount" "$mb" push "$reg/$repo" --oci "$work/release-1" --mount-from marqo-base \
        --tag 1 --yes -q > /dev/null 2>&1
    local args=(push "$reg/$repo" --manifest "$manifest" --tag 2 --yes --format json)
    [ "$mode" = cache ] && args+=(--cache "$reg/cache")
    # Peak disk: the runner's cache directory (downloads, layers, the scratch layout), polled.
    ( set +e; peak=0; while :; do s=$(du -sb "$cache" 2>/dev/null | cut -f1); if [ "${s:-0}" -gt "$peak" ]; then peak=$s; echo "$peak" > "$work/peak.$mode.$n"; fi; sleep 0.5; done ) &
    local poller=$!
    export MARQO_BASE_CACHE_DIR="$cache"
    measure "$mode-$n" "$mb" "${args[@]}"
    unset MARQO_BASE_CACHE_DIR
    kill "$poller" 2>/dev/null || true
    wait "$poller" 2>/dev/null || true
    local digest downloaded sent
    digest=$(grep '^{"schema"' "$work/$mode-$n.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["digest"])' 2>/dev/null || echo "?")
    # What the run fetched: its "Fetched ... (N MB downloaded" (.debs) and "(N MB)" (wheels,
    # sdists) lines; blobs mounted from the cache are not downloaded.
    downloaded=$({ grep -h '^Fetched' "$work/$mode-$n.log" || true; } | sed -n 's/.*(\([0-9.]*\) MB.*/\1/p' | awk '{ s += $1 } END { printf "%.1f MB", s }')
    sent=$({ grep -o 'blobs sent ([^)]*)' "$work/$mode-$n.log" || true; } | head -1)
    printf '  %-9s downloaded %-10s %-22s peak disk %s MB, index %s\n' "$mode-$n" "$downloaded" "$sent" \
        "$(( $(cat "$work/peak.$mode.$n" 2>/dev/null || echo 0) / 1000000 ))" "$([ "$digest" = "$local2" ] && echo "= local build" || echo "$digest (differs!)")" \
        | tee -a "$work/summary.txt"
    rm -rf "$cache"
}

: > "$work/summary.txt"
echo "== releases from an empty runner disk ($rounds rounds, interleaved)"
for n in $(seq 1 "$rounds"); do
    run cache "$n"
    run nocache "$n"
done
best() { awk -v m="$1" '$1 ~ "^"m"-" { if (!b || $2 < b) b = $2 } END { print b }' "$results"; }
echo "== best of $rounds"
with=$(best cache); without=$(best nocache)
echo "  with the registry cache:    $with s"
echo "  without it (full build):    $without s"
awk -v a="$with" -v b="$without" 'BEGIN { if (a > 0 && b > 0) printf "  with / without: %.2fx\n", a / b }'
echo "  changed layers: $((changed_bytes / 1024)) KiB (the upload target)"
echo "(results in $results and $work/summary.txt, logs in $work)"
