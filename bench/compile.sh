#!/usr/bin/env bash
# Times `marqo-base compile` against uv and pip-compile on Marqo's requirements, cold and
# warm cache, in one run; prints wall time, peak memory and the ratios; then the corpus
# (bench/corpus.sh: twelve other projects, one line each, the totals) in the same rounds.
#
#   bench/compile.sh            # BENCH_DIR=/tmp/x keeps the work dir; SKIP_PIP_COMPILE=1 skips it;
#                               # ROUNDS=3 interleaved rounds (best of); UV_VERSION, PIP_TOOLS_VERSION pin the peers;
#                               # SKIP_CORPUS=1 leaves the corpus out
#
# uv and pip-tools are installed into a throwaway venv (pip-tools under Python 3.9, the
# target, since pip-compile resolves only for the interpreter that runs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-compile.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"
ex="$root/examples/marqo-base"
req="$ex/requirements-default-index.in"
bc="$ex/build-constraints.txt"
date_cut=$(cat "$ex/exclude-newer")

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
ours="$CARGO_TARGET_DIR/release/marqo-base"

py39=""
for c in python3.9 "$HOME"/.pyenv/versions/3.9*/bin/python3.9 /usr/bin/python3.9; do
    if "$c" --version >/dev/null 2>&1; then py39=$c; break; fi
done
[ -n "$py39" ] || { echo "no working python3.9: pip-compile will resolve for python3 instead"; py39=python3; }
UV_VERSION=${UV_VERSION:-0.13.9}
PIP_TOOLS_VERSION=${PIP_TOOLS_VERSION:-7.6.2}
if [ ! -x "$work/venv/bin/uv" ]; then
    echo "== installing uv $UV_VERSION and pip-tools $PIP_TOOLS_VERSION into $work/venv"
    "$py39" -m venv "$work/venv"
    "$work/venv/bin/pip" install -q "uv==$UV_VERSION" "pip-tools==$PIP_TOOLS_VERSION"
fi
uv="$work/venv/bin/uv"
# uv as its docs recommend on this network: system TLS roots (the proxy's CA is there), no
# progress bars, and no managed-interpreter downloads (none can be reached here; without
# this uv spends ~10 s per cold run trying).
export UV_NATIVE_TLS=1 UV_NO_PROGRESS=1 UV_PYTHON_DOWNLOADS=never
echo "uv: $("$uv" --version); pip-compile: $("$work/venv/bin/pip-compile" --version 2>&1 | tail -1)"

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

out="$work/out"; mkdir -p "$out"
ours_args=(compile "$req" --python 3.9 --platform linux/amd64 --platform linux/arm64
    --exclude-newer "$date_cut" -b "$bc" -o "$out/{arch}-requirements.txt" -q)
uv_common=(pip compile "$req" --python-version 3.9 --exclude-newer "$date_cut" -b "$bc" -q)

ROUNDS=${ROUNDS:-3}
# Interleaved rounds, best of $ROUNDS: each cold run of each tool starts from an empty cache
# of its own; warm runs follow that tool's cold run of the same round.
for round in $(seq "$ROUNDS"); do
    echo "== round $round: cold, then warm (ours online; uv --offline)"
    rm -rf "$work/cache-ours" "$work/cache-uv" "$work/cache-uv-pp"
    measure "ours-cold-$round" env MARQO_BASE_CACHE_DIR="$work/cache-ours" "$ours" "${ours_args[@]}"
    measure "uv-universal-cold-$round" env UV_CACHE_DIR="$work/cache-uv" "$uv" "${uv_common[@]}" --universal -o "$out/uv-universal.txt"
    measure "uv-per-platform-cold-$round" bash -c "
        UV_CACHE_DIR='$work/cache-uv-pp' '$uv' ${uv_common[*]@Q} --python-platform x86_64-manylinux_2_28 -o '$out/uv-amd64.txt' &&
        UV_CACHE_DIR='$work/cache-uv-pp' '$uv' ${uv_common[*]@Q} --python-platform aarch64-manylinux_2_28 -o '$out/uv-arm64.txt'"
    measure "ours-warm-$round" env MARQO_BASE_CACHE_DIR="$work/cache-ours" "$ours" "${ours_args[@]}"
    measure "uv-universal-warm-offline-$round" env UV_CACHE_DIR="$work/cache-uv" "$uv" "${uv_common[@]}" --universal --offline -o "$out/uv-universal.txt"
    measure "uv-per-platform-warm-offline-$round" bash -c "
        UV_CACHE_DIR='$work/cache-uv-pp' '$uv' ${uv_common[*]@Q} --offline --python-platform x86_64-manylinux_2_28 -o '$out/uv-amd64.txt' &&
        UV_CACHE_DIR='$work/cache-uv-pp' '$uv' ${uv_common[*]@Q} --offline --python-platform aarch64-manylinux_2_28 -o '$out/uv-arm64.txt'"
done
# best NAME: the lowest time of NAME-1..NAME-$ROUNDS, recorded as NAME.
best() {
    awk -v n="$1" '$1 ~ "^"n"-[0-9]+$" && $2 + 0 > 0 { if (!b || $2 < b) { b = $2; m = $4 } } END { if (b) printf "%-28s %8.2f s %8.0f MB (best of rounds)\n", n, b, m }' "$results" | tee -a "$results"
}
for name in ours-cold uv-universal-cold uv-per-platform-cold ours-warm uv-universal-warm-offline uv-per-platform-warm-offline; do
    best "$name"
done

if [ "${SKIP_PIP_COMPILE:-0}" != 1 ]; then
    echo "== pip-compile (host platform only, Python 3.9, cold cache)"
    measure pip-compile-host-cold env PIP_CONSTRAINT="$bc" "$work/venv/bin/pip-compile" -q --strip-extras \
        --cache-dir "$work/cache-pip" --rebuild -o "$out/pip-compile-amd64.txt" "$req"
fi

echo "== ratios (ours / peer; below 1 is faster)"
ratio() { awk -v a="$(secs "$1")" -v b="$(secs "$2")" -v n="$3" 'BEGIN { if (a && b) printf "%-44s %.2fx\n", n, a / b }'; }
ratio ours-cold uv-universal-cold "cold: ours / uv --universal"
ratio ours-cold uv-per-platform-cold "cold: ours / uv per platform (2 runs)"
ratio ours-warm uv-universal-warm-offline "warm: ours online / uv --universal --offline"
ratio ours-warm uv-per-platform-warm-offline "warm: ours online / uv per platform --offline"
ratio ours-cold pip-compile-host-cold "cold: ours (2 platforms) / pip-compile (1)"

echo "== do the pins agree? (ours vs uv per platform)"
for a in amd64 arm64; do
    d=$(diff <(grep -o '^[a-z0-9._-]*==[^ ]*' "$out/$a-requirements.txt") <(grep -o '^[a-z0-9._-]*==[^ ]*' "$out/uv-$a.txt") || true)
    echo "$a: $( [ -z "$d" ] && echo same pins || echo "differs:"; )"; [ -z "$d" ] || echo "$d" | head -20
done
echo "work dir: $work"

if [ "${SKIP_CORPUS:-0}" != 1 ]; then
    echo "== the corpus (bench/corpus.sh, same uv, ROUNDS=$ROUNDS)"
    BENCH_DIR="$work/corpus" ROUNDS="$ROUNDS" UV_VERSION="$UV_VERSION" "$root/bench/corpus.sh"
fi
