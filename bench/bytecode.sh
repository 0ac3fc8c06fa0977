#!/usr/bin/env bash
# Bytecode benchmark: the first import of an image's Python stack in a fresh container, with
# the .pyc marqo-base compiles into the wheel layers and without them (the same image with its
# wheels' __pycache__ removed), and whether two --no-cache builds give the same bytes.
#
#   bash bench/bytecode.sh                                # examples/quickstart
#   BENCH_EXAMPLE=marqo-base bash bench/bytecode.sh       # the flagship (about 6 GB unpacked)
#   BENCH_RUNS=5 BENCH_DIR=/tmp/b bash bench/bytecode.sh  # more runs; keep the work directory
#
# Each run is a new container of podman + runc on the unpacked linux/amd64 image
# (`podman run --rootfs DIR:O`: an overlay per run, so every run starts from the image's
# files; with the image's Env). Needs the live index and mirror the first time (to fill the
# download cache: MARQO_BASE_CACHE_DIR, else one in the work directory), skopeo, umoci,
# podman and runc. Prints one line per measurement; nothing is asserted.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/lib.sh"
work=${BENCH_DIR:-$(mktemp -d /tmp/marqo-base-bench-bytecode.XXXXXX)}
mkdir -p "$work"
results=$work/results.txt
: > "$results"
example=${BENCH_EXAMPLE:-quickstart}
runs=${BENCH_RUNS:-3}
platforms=${BENCH_PLATFORMS:-linux/amd64 linux/arm64}
case "$example" in
    quickstart) modules=${BENCH_MODULES:-requests, numpy, orjson, tqdm}; py=python3.11 ;;
    marqo-base) modules=${BENCH_MODULES:-torch, transformers, open_clip}; py=python3.9 ;;
    *) modules=${BENCH_MODULES:?set BENCH_MODULES for $example}; py=${BENCH_PYTHON:?set BENCH_PYTHON (python3.X) for $example} ;;
esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}
export MARQO_BASE_CACHE_DIR=${MARQO_BASE_CACHE_DIR:-$work/cache}
for tool in skopeo umoci podman runc; do
    command -v "$tool" > /dev/null || { echo "bench/bytecode.sh needs $tool"; exit 2; }
done

(cd "$here" && cargo build --release -q -p marqo-base)
bin=$CARGO_TARGET_DIR/release/marqo-base
manifest=$here/examples/$example/marqo-base.toml
platform_args=()
for p in $platforms; do platform_args+=(--platform "$p"); done
echo "== examples/$example, $platforms, $(nproc) cores, work in $work"

# 1. Two builds of every layer (--no-cache): the same index digest, .pyc included.
rm -rf "$work/one" "$work/two"
measure build-no-cache-1 "$bin" build --manifest "$manifest" --oci "$work/one" --no-cache "${platform_args[@]}"
measure build-no-cache-2 "$bin" build --manifest "$manifest" --oci "$work/two" --no-cache "${platform_args[@]}"
grep -h "^Bytecode:\|^Byte-compiled" "$work/build-no-cache-1.log" | tee -a "$results"
one=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/one/index.json")
two=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$work/two/index.json")
if [ "$one" = "$two" ]; then verdict=same; else verdict=DIFFERENT; fi
echo "two --no-cache builds: $verdict index ($one, $two)" | tee -a "$results"
rm -rf "$work/two"

# 2. The linux/amd64 image, unpacked; its Env for the containers.
rm -rf "$work/amd64" "$work/bundle"
skopeo copy -q --override-arch amd64 "oci:$work/one:latest" "oci:$work/amd64:x"
rm -rf "$work/one"
umoci unpack --rootless --image "$work/amd64:x" "$work/bundle" > /dev/null
rootfs=$work/bundle/rootfs
env_args=()
while IFS= read -r line; do env_args+=(-e "$line"); done < <(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))["process"]["env"]: print(e)' "$work/bundle/config.json")
site=$rootfs/usr/local/lib/$py/dist-packages
echo "wheel .pyc in the image: $(find "$site" -name '*.pyc' | wc -l)" | tee -a "$results"

conf=$work/containers.conf
printf '[containers]\ndefault_ulimits = []\n' > "$conf"
container() {
    CONTAINERS_CONF=$conf podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp" \
        --cgroup-manager=cgroupfs --runtime runc run --rm --network=none "${env_args[@]}" "$@"
}
# The import, timed inside the container; then how many .pyc this process wrote (stdlib
# ones included: Debian compiles the standard library in a maintainer script we do not run).
timer="import time, os
t = time.perf_counter()
import $modules
took = time.perf_counter() - t
wrote = sum(f.endswith('.pyc') and os.stat(os.path.join(d, f)).st_mtime >= time.time() - took - 1
            for d, _, fs in os.walk('/usr') for f in fs)
print('%.3f %d' % (took, wrote))"

# `run NAME ARGS`: $runs fresh containers; each prints the first import's seconds, and the
# second's in the same container (after the first wrote what it could).
run() {
    local name=$1; shift
    for i in $(seq "$runs"); do
        # stderr aside: transformers warns on a read-only root.
        container -e "TIMER=$timer" "$@" -e "PY=/usr/bin/$py" /bin/sh -c '"$PY" -c "$TIMER"; "$PY" -c "$TIMER"' \
            2>> "$work/containers.err" | tr '\n' ' ' | awk -v n="$name" -v i="$i" '{ printf "%-24s run %d: first %s s (%s .pyc written), second %s s\n", n, i, $1, $2, $3 }' \
            | tee -a "$results"
    done
}
run "with .pyc" --rootfs "$rootfs:O"
run "with .pyc, read-only" --read-only --rootfs "$rootfs"
find "$site" -name __pycache__ -type d -prune -exec rm -rf {} +
run "without .pyc" --rootfs "$rootfs:O"
run "without .pyc, read-only" --read-only --rootfs "$rootfs"
rm -rf "$work/bundle" "$work/amd64" "$work/podman"
