#!/usr/bin/env bash
# Times writing one image layer (tar + compression + both digests) from a directory tree
# against `pigz -6` and `zstd -3` compressing the same tar bytes on all cores; prints wall
# time, peak memory and the ratios.
#
#   bench/layer.sh            # BENCH_DIR=/tmp/x keeps the work dir
#   BENCH_SRC=/some/dir BENCH_MB=500 bench/layer.sh
#
# The source defaults to the host's multiarch library directory (shared libraries, as in a
# Debian layer), else /usr/lib; about BENCH_MB megabytes of its files go into the layer.
# "ours" includes reading the files into the layer's spool; the peers read the tar from the
# page cache. The same tar is fed to each peer: it is the layer decompressed. CPU seconds
# (user + sys) are printed too: on a shared machine they move less than wall time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-layer.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"
multiarch=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo none)
src=${BENCH_SRC:-$( [ -d "$multiarch" ] && echo "$multiarch" || echo /usr/lib )}
mb=${BENCH_MB:-500}
cores=$(nproc)

echo "== building the layer bench (release)"
bin=$(cargo bench -p image --bench layer --no-run --manifest-path "$root/Cargo.toml" 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p')
[ -x "$bin" ] || { echo "cannot find the bench executable"; exit 1; }

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

echo "== $src, about $mb MB of files, $cores cores; reading them once to warm the page cache"
tar -cf /dev/null -C "$src" . 2>/dev/null || true

# `timed NAME CMD...`: `measure`, also keeping CPU seconds in $work/cpu.NAME.
timed() { local name=$1; shift; measure "$name" /usr/bin/time -f "%U %S" -o "$work/cpu.$name" "$@"; }
cpu() { awk '{ print $1 + $2 }' "$work/cpu.$1" 2>/dev/null; }

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Each peer runs right after ours, so that both see about the same load.
timed ours-gzip "$bin" "$src" "$work/layer.tar.gz" --max-mb "$mb"
cat "$work/ours-gzip.log"
gunzip -c "$work/layer.tar.gz" > "$work/layer.tar"
timed pigz-6 sh -c "pigz -6 -p $cores -c '$work/layer.tar' > '$work/pigz.tar.gz'"
timed ours-zstd "$bin" "$src" "$work/layer.tar.zst" --max-mb "$mb" --zstd
timed zstd-3 sh -c "zstd -q -3 -T$cores -c '$work/layer.tar' > '$work/zstd.tar.zst'"
timed ours-gzip-1-thread "$bin" "$src" "$work/layer-1.tar.gz" --max-mb "$mb" --threads 1
cmp -s "$work/layer.tar.gz" "$work/layer-1.tar.gz" && echo "1 thread and $cores: same bytes" ||
    { echo "1 thread and $cores threads gave different bytes"; exit 1; }

tar_mb=$(( $(stat -c %s "$work/layer.tar") / 1000000 ))
echo "== throughput: MB of tar per second of wall time, and CPU seconds (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
for name in ours-gzip ours-gzip-1-thread pigz-6 ours-zstd zstd-3; do
    awk -v n="$name" -v s="$(secs "$name")" -v c="$(cpu "$name")" -v t="$tar_mb" \
        'BEGIN { if (s) printf "%-20s %7.1f MB/s %7.2f s CPU\n", n, t / s, c }'
done
ls -l "$work"/layer.tar.gz "$work"/pigz.tar.gz "$work"/layer.tar.zst "$work"/zstd.tar.zst | awk '{ printf "%-40s %6.1f MB\n", $9, $5 / 1e6 }'

echo "== ratios (ours / peer; below 1 is faster)"
ratio() { awk -v a="$(secs "$1")" -v b="$(secs "$2")" -v n="$3" 'BEGIN { if (a && b) printf "%-44s %.2fx\n", n, a / b }'; }
ratio ours-gzip pigz-6 "gzip: ours (tar + digests) / pigz -6"
ratio ours-zstd zstd-3 "zstd: ours (tar + digests) / zstd -3 -T$cores"
rm -f "$work/layer.tar"
echo "work dir: $work"
