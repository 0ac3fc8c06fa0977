#!/usr/bin/env bash
# Compiles every project of bench/corpus/ with `marqo-base compile` and with uv, cold cache,
# one platform each (the project's Python, linux/amd64, its upload cutoff); prints both times,
# the ratio, and whether our pins equal the pins the project committed, then the totals.
#
#   bench/corpus.sh              # ROUNDS=3 interleaved rounds (best of; default 1); BENCH_DIR=/tmp/x
#                                # keeps the work dir; UV_VERSION pins uv; ONLY=name runs one project
#
# uv is installed into a throwaway venv, as in bench/compile.sh. Each run of each tool starts
# from an empty cache of its own, removed again after the project (the disk may be small).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus="$root/bench/corpus"
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-corpus.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
ours="$CARGO_TARGET_DIR/release/marqo-base"

UV_VERSION=${UV_VERSION:-0.13.9}
if [ ! -x "$work/venv/bin/uv" ]; then
    echo "== installing uv $UV_VERSION into $work/venv"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q "uv==$UV_VERSION"
fi
uv="$work/venv/bin/uv"
# As in bench/compile.sh: system TLS roots, no progress bars, no managed-interpreter downloads.
export UV_NATIVE_TLS=1 UV_NO_PROGRESS=1 UV_PYTHON_DOWNLOADS=never
echo "uv: $("$uv" --version); ours: $("$ours" --version 2>&1 | head -1)"

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# toml KEY FILE: a string value of project.toml.
toml() { sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" "$2"; }
# pins FILE: the sorted name==version lines, names normalised (lowercase, runs of -_. as -,
# extras dropped).
pins() {
    grep -oE '^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^]]*\])? *== *[^ ;\\#]+' "$1" |
        sed -E 's/\[[^]]*\]//; s/ //g' |
        awk -F'==' '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2 }' | sort -u
}
# best NAME: the lowest time of NAME-1..NAME-$ROUNDS; peak NAME: the highest peak memory (MB)
# of those rounds.
best() {
    awk -v n="$1" '$1 ~ "^"n"-[0-9]+$" && $2 + 0 > 0 { if (!b || $2 < b) b = $2 } END { if (b) print b }' "$results"
}
peak() {
    awk -v n="$1" '$1 ~ "^"n"-[0-9]+$" && $4 + 0 > 0 { if ($4 > m) m = $4 } END { if (m) print m }' "$results"
}

ROUNDS=${ROUNDS:-1}
TIMEOUT=${TIMEOUT:-600}
summary="$work/summary.txt"
printf '%-44s %6s %5s %8s %8s %7s %7s %7s  %-22s %s\n' project python pins ours uv ratio "ours MB" "uv MB" "pins = committed?" "ours vs uv" | tee "$summary"
tot_ours=0; tot_uv=0; n_same=0; n=0; n_uv=0; max_ours=0; max_uv=0
for dir in "$corpus"/*/; do
    name=$(basename "$dir")
    [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
    py=$(toml python "$dir/project.toml"); cut=$(toml exclude_newer "$dir/project.toml")
    out="$work/out/$name"; mkdir -p "$out"
    for round in $(seq "$ROUNDS"); do
        rm -rf "$work/cache-ours" "$work/cache-uv"
        # Run from the project's directory so relative -r/-c includes resolve as they did there.
        measure "$name-ours-$round" env -C "$dir" MARQO_BASE_CACHE_DIR="$work/cache-ours" timeout "$TIMEOUT" \
            "$ours" compile requirements.in --python "$py" --platform linux/amd64 --exclude-newer "$cut" -o "$out/ours.txt" -q
        measure "$name-uv-$round" env -C "$dir" UV_CACHE_DIR="$work/cache-uv" timeout "$TIMEOUT" \
            "$uv" pip compile requirements.in --python-version "$py" --python-platform x86_64-manylinux_2_28 \
            --exclude-newer "$cut" -o "$out/uv.txt" -q
    done
    rm -rf "$work/cache-ours" "$work/cache-uv"
    a=$(best "$name-ours"); b=$(best "$name-uv")
    pins "$dir/requirements.txt" > "$out/committed.pins"
    if [ -s "$out/ours.txt" ] && [ -n "$a" ]; then
        pins "$out/ours.txt" > "$out/ours.pins"
        d=$(diff "$out/committed.pins" "$out/ours.pins" | grep '^[<>]' || true)
        if [ -z "$d" ]; then same=same; n_same=$((n_same + 1)); else same="differs ($(echo "$d" | wc -l) lines)"; fi
    else
        d=""; same="ours failed"
    fi
    # Does uv agree with us? (A committed pin that neither tool gives is often one pip-compile
    # kept from the previous requirements.txt: it prefers existing pins unless --upgrade.)
    if [ -n "$b" ] && [ -s "$out/uv.txt" ] && [ -s "$out/ours.txt" ]; then
        pins "$out/uv.txt" > "$out/uv.pins"
        if diff -q "$out/ours.pins" "$out/uv.pins" >/dev/null; then vs_uv="ours = uv"; else
            vs_uv="ours != uv ($( (diff "$out/ours.pins" "$out/uv.pins" || true) | grep -c '^[<>]') lines)"; fi
    else
        vs_uv="-"
    fi
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a && b) printf "%.2fx", a / b; else print "-" }')
    ma=$(peak "$name-ours"); mb=$(peak "$name-uv")
    printf '%-44s %6s %5s %7ss %7ss %7s %7s %7s  %-22s %s\n' "$name" "$py" "$(wc -l < "$out/committed.pins")" "${a:--}" "${b:--}" "$ratio" "${ma:--}" "${mb:--}" "$same" "$vs_uv" | tee -a "$summary"
    [ -z "$ma" ] || [ "$ma" -le "$max_ours" ] || max_ours=$ma
    [ -z "$mb" ] || [ "$mb" -le "$max_uv" ] || max_uv=$mb
    [ -z "$d" ] || echo "$d" | sed 's/^/        /' | head -40 | tee -a "$summary"
    n=$((n + 1)); [ "$vs_uv" != "ours = uv" ] || n_uv=$((n_uv + 1))
    if [ -n "$a" ] && [ -n "$b" ]; then
        tot_ours=$(awk -v x="$tot_ours" -v y="$a" 'BEGIN { print x + y }')
        tot_uv=$(awk -v x="$tot_uv" -v y="$b" 'BEGIN { print x + y }')
    fi
done
awk -v a="$tot_ours" -v b="$tot_uv" -v s="$n_same" -v n="$n" -v u="$n_uv" -v ma="$max_ours" -v mb="$max_uv" 'BEGIN {
    printf "total (projects where both ran): ours %.2f s, uv %.2f s, ours / uv %.2fx; highest peak: ours %d MB, uv %d MB; committed pins reproduced: %d of %d; same pins as uv: %d of %d\n", a, b, (b ? a / b : 0), ma, mb, s, n, u, n }' | tee -a "$summary"
echo "('<' a committed pin, '>' ours, in the lines under a project; work dir: $work)"
