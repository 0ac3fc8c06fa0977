#!/usr/bin/env bash
# Compiles every project of bench/corpus/ with `marqo-base compile` and with uv, cold cache,
# one platform each (the project's Python, linux/amd64, its upload cutoff); prints both times,
# the ratio, whether our pins equal uv's, and whether we reproduce the pins the project
# committed, then the totals. Reproducing is checked as the project's own re-run of
# pip-compile would do it: the committed requirements.txt in place as the output, whose pins
# are kept where they still fit (untimed; the timed runs start from no output at all).
#
# project.toml: `inputs` (default requirements.in; e.g. "requirements.in pyproject.toml"),
# `other_os_pins` (names the committed file pins only because it was compiled on another OS,
# such as appnope on macOS: left out of the comparison, and said so).
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
# unsafe FILE: the names pip-compile (without --allow-unsafe) left unpinned under "considered
# to be unsafe" (`# pip`), normalised; pins of them are not compared.
unsafe() {
    awk '/considered to be unsafe/ { u = 1; next } u && /^# [A-Za-z0-9]/ { n = tolower($2); gsub(/[-_.]+/, "-", n); print n }' "$1"
}
# without NAMES...: the pins of stdin except those of NAMES.
without() {
    local pattern
    pattern=$(printf '%s\n' "$@" | awk 'NF { printf "%s^%s==", (n++ ? "|" : ""), $1 }')
    if [ -n "$pattern" ]; then grep -Ev "$pattern" || true; else cat; fi
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
printf '%-44s %6s %5s %8s %8s %7s %7s %7s  %-10s %-22s %s\n' project python pins ours uv ratio "ours MB" "uv MB" "ours vs uv" "fresh = committed?" "re-run keeps committed?" | tee "$summary"
tot_ours=0; tot_uv=0; n_same=0; n_fresh=0; n=0; n_uv=0; max_ours=0; max_uv=0
for dir in "$corpus"/*/; do
    name=$(basename "$dir")
    [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
    py=$(toml python "$dir/project.toml"); cut=$(toml exclude_newer "$dir/project.toml")
    read -r -a inputs <<< "$(toml inputs "$dir/project.toml")"
    [ "${#inputs[@]}" -gt 0 ] || inputs=(requirements.in)
    read -r -a other_os <<< "$(toml other_os_pins "$dir/project.toml")"
    read -r -a skip <<< "$(unsafe "$dir/requirements.txt" | tr '\n' ' ')"
    skip+=("${other_os[@]}")
    out="$work/out/$name"; mkdir -p "$out"
    for round in $(seq "$ROUNDS"); do
        rm -rf "$work/cache-ours" "$work/cache-uv"
        # Run from the project's directory so relative -r/-c includes resolve as they did there.
        measure "$name-ours-$round" env -C "$dir" MARQO_BASE_CACHE_DIR="$work/cache-ours" timeout "$TIMEOUT" \
            "$ours" compile "${inputs[@]}" --python "$py" --platform linux/amd64 --exclude-newer "$cut" -o "$out/ours.txt" -q
        measure "$name-uv-$round" env -C "$dir" UV_CACHE_DIR="$work/cache-uv" timeout "$TIMEOUT" \
            "$uv" pip compile "${inputs[@]}" --python-version "$py" --python-platform x86_64-manylinux_2_28 \
            --exclude-newer "$cut" -o "$out/uv.txt" -q
    done
    # The re-run: the committed file in place as the output (untimed, the cache now warm).
    cp "$dir/requirements.txt" "$out/rerun.txt"
    env -C "$dir" MARQO_BASE_CACHE_DIR="$work/cache-ours" timeout "$TIMEOUT" "$ours" compile "${inputs[@]}" \
        --python "$py" --platform linux/amd64 --exclude-newer "$cut" -o "$out/rerun.txt" -q || : > "$out/rerun.txt"
    rm -rf "$work/cache-ours" "$work/cache-uv"
    a=$(best "$name-ours"); b=$(best "$name-uv")
    pins "$dir/requirements.txt" | without "${other_os[@]}" > "$out/committed.pins"
    compare() { # compare FILE: sets d (the differing lines) and prints the verdict
        if [ -s "$1" ]; then
            pins "$1" | without "${skip[@]}" > "$1.pins"
            d=$(diff "$out/committed.pins" "$1.pins" | grep '^[<>]' || true)
            if [ -z "$d" ]; then echo same; else echo "differs ($(echo "$d" | wc -l) lines)"; fi
        else
            echo "ours failed"
        fi
    }
    fresh=$(compare "$out/ours.txt"); [ "$fresh" != same ] || n_fresh=$((n_fresh + 1))
    same=$(compare "$out/rerun.txt")
    d=$(diff "$out/committed.pins" "$out/rerun.txt.pins" 2>/dev/null | grep '^[<>]' || true)
    [ "$same" != same ] || n_same=$((n_same + 1))
    [ "${#other_os[@]}" -eq 0 ] || same="$same (less ${other_os[*]}: other OS)"
    if [ -s "$out/ours.txt" ]; then pins "$out/ours.txt" > "$out/ours.pins"; fi
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
    printf '%-44s %6s %5s %7ss %7ss %7s %7s %7s  %-10s %-22s %s\n' "$name" "$py" "$(wc -l < "$out/committed.pins")" "${a:--}" "${b:--}" "$ratio" "${ma:--}" "${mb:--}" "$vs_uv" "$fresh" "$same" | tee -a "$summary"
    [ -z "$ma" ] || [ "$ma" -le "$max_ours" ] || max_ours=$ma
    [ -z "$mb" ] || [ "$mb" -le "$max_uv" ] || max_uv=$mb
    [ -z "$d" ] || echo "$d" | sed 's/^/        /' | head -40 | tee -a "$summary"
    n=$((n + 1)); [ "$vs_uv" != "ours = uv" ] || n_uv=$((n_uv + 1))
    if [ -n "$a" ] && [ -n "$b" ]; then
        tot_ours=$(awk -v x="$tot_ours" -v y="$a" 'BEGIN { print x + y }')
        tot_uv=$(awk -v x="$tot_uv" -v y="$b" 'BEGIN { print x + y }')
    fi
done
awk -v a="$tot_ours" -v b="$tot_uv" -v s="$n_same" -v f="$n_fresh" -v n="$n" -v u="$n_uv" -v ma="$max_ours" -v mb="$max_uv" 'BEGIN {
    printf "total (projects where both ran): ours %.2f s, uv %.2f s, ours / uv %.2fx; highest peak: ours %d MB, uv %d MB; same pins as uv: %d of %d; committed pins kept by a re-run: %d of %d (a fresh resolution gives them on %d)\n", a, b, (b ? a / b : 0), ma, mb, u, n, s, n, f }' | tee -a "$summary"
echo "('<' a committed pin, '>' ours after the re-run, in the lines under a project; pins of pip-compile's"
echo " unpinned 'unsafe' packages are not compared; work dir: $work)"
