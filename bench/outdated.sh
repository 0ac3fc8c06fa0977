#!/usr/bin/env bash
# Times `marqo-base outdated --security` on the flagship's lock (both platforms, bullseye,
# -updates and -security), cold (an empty cache) and warm, against apt on the same sources:
# `apt-get update` in a private apt root (nothing of the host's apt configuration, both
# architectures), then `apt-cache policy` of every locked package, whose candidates are
# compared with the locked versions by `dpkg --compare-versions`. The two answers (which
# packages have a newer candidate, per architecture) must be the same: the script says so.
# apt reads no changelog, so the compared runs are `--no-cves`; ours with `--security` and
# the CVE IDs (one .deb per source package fetched and read) is timed after, cold and warm.
#
#   bench/outdated.sh                    # BENCH_DIR=/tmp/x keeps the work dir; ROUNDS (default 3)
#   BENCH_LOCK=old.lock bench/outdated.sh   # another lock of the flagship's manifest
#
# The archives are the host's (its apt source of the main archive and of a `*-security`
# suite), the same ones `marqo-base` reads for a manifest that names no mirror.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-outdated.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"
rounds=${ROUNDS:-3}
manifest=$root/examples/marqo-base/marqo-base.toml
lock=${BENCH_LOCK:-$root/examples/marqo-base/marqo-base.lock}
suite=$(awk -F'"' '/^suite = / { print $2; exit }' "$manifest")

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
ours="$CARGO_TARGET_DIR/release/marqo-base"

# The host's archive URIs: the first deb822 entry (or one-line `deb`) whose suites are not
# -security, and the first whose are.
host_uri() { # security|main
    local want=$1
    { for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$want" 'BEGIN { RS = ""; FS = "\n" }
             { uris = ""; suites = ""
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                   if ($i ~ /^Suites:/) suites = $i }
               sec = (suites ~ /-security/)
               if (uris != "" && ((want == "security") == sec)) { split(uris, u, " "); print u[1] } }' "$f"
      done
      { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
        awk -v want="$want" '$1 == "deb" && (($3 ~ /-security/) == (want == "security")) { print $2 }'
    } | awk 'NR == 1'
}
main_uri=$(host_uri main); security_uri=$(host_uri security)
[ -n "$main_uri" ] && [ -n "$security_uri" ] || { echo "no main and security apt sources on this host"; exit 2; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# The locked packages per architecture: `name version` (arch all ones in both).
for arch in amd64 arm64; do
    awk -v arch="$arch" 'BEGIN { RS = ""; FS = "\n" }
        /^\[\[debian\]\]/ { n = ""; v = ""; a = ""
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^name = /) { n = $i; gsub(/^name = "|"$/, "", n) }
                if ($i ~ /^version = /) { v = $i; gsub(/^version = "|"$/, "", v) }
                if ($i ~ /^arch = /) { a = $i; gsub(/^arch = "|"$/, "", a) } }
            if (a == arch || a == "all") print n, v, a }' "$lock" | sort > "$work/locked-$arch.txt"
done
echo "lock: $lock ($(wc -l < "$work/locked-amd64.txt") amd64, $(wc -l < "$work/locked-arm64.txt") arm64 packages)"

# apt: a private root with the manifest's three suites, both architectures.
apt_root() { # DIR
    local t=$1
    rm -rf "$t"
    mkdir -p "$t/etc/apt/apt.conf.d" "$t/etc/apt/sources.list.d" "$t/etc/apt/preferences.d" \
        "$t/etc/apt/trusted.gpg.d" "$t/lists/partial" "$t/cache/archives/partial" "$t/log"
    : > "$t/status"
    cat > "$t/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $main_uri
Suites: $suite $suite-updates
Components: main
Signed-By: $keyring

Types: deb
URIs: $security_uri
Suites: $suite-security
Components: main
Signed-By: $keyring
SRC
    cat > "$t/apt.conf" <<CONF
Dir "$t/";
Dir::State "$t/";
Dir::State::lists "$t/lists/";
Dir::State::status "$t/status";
Dir::Cache "$t/cache/";
Dir::Etc "$t/etc/apt/";
Dir::Etc::Parts "$t/etc/apt/apt.conf.d/";
Dir::Etc::TrustedParts "$t/etc/apt/trusted.gpg.d/";
Dir::Log "$t/log/";
APT::Architecture "amd64";
APT::Architectures { "amd64"; "arm64"; };
Acquire::Languages "none";
APT::Sandbox::User "root";
CONF
}
# apt's answer: `arch name locked candidate` for each locked package whose candidate is newer.
apt_outdated() { # DIR
    local t=$1
    APT_CONFIG="$t/apt.conf" apt-get update -qq
    for arch in amd64 arm64; do
        local q=()
        # An `all` package answers to its name alone.
        while read -r name _ pkgarch; do
            if [ "$pkgarch" = all ]; then q+=("$name"); else q+=("$name:$arch"); fi
        done < "$work/locked-$arch.txt"
        APT_CONFIG="$t/apt.conf" apt-cache policy "${q[@]}" |
            awk '/^[^ ]/ { sub(/:$/, ""); name = $0 } /^  Candidate:/ { print name, $2 }' |
            sed "s/:$arch / /" | sort > "$t/candidates-$arch.txt"
        join "$work/locked-$arch.txt" "$t/candidates-$arch.txt" | while read -r name locked _ candidate; do
            if [ "$candidate" != "(none)" ] && dpkg --compare-versions "$candidate" gt "$locked"; then
                echo "$arch $name $locked $candidate"
            fi
        done
    done | sort > "$t/outdated.txt"
}
ours_outdated() { # CACHE OUT EXTRA...
    local cache=$1 out=$2; shift 2
    MARQO_BASE_CACHE_DIR="$cache" "$ours" --format json outdated --no-python \
        --manifest "$manifest" --lock "$lock" "$@" > "$out" || [ $? -eq 1 ]
}
export -f apt_outdated ours_outdated
export work ours manifest lock

for round in $(seq "$rounds"); do
    echo "== round $round"
    rm -rf "$work/cache"
    measure "ours-cold-r$round" bash -c "ours_outdated '$work/cache' '$work/ours.json' --no-cves"
    measure "ours-warm-r$round" bash -c "ours_outdated '$work/cache' '$work/ours.json' --no-cves"
    apt_root "$work/apt"
    measure "apt-cold-r$round" bash -c "apt_outdated '$work/apt'"
    measure "apt-warm-r$round" bash -c "apt_outdated '$work/apt'"
    rm -rf "$work/cache"
    measure "ours-cves-cold-r$round" bash -c "ours_outdated '$work/cache' '$work/ours-cves.json' --security"
    measure "ours-cves-warm-r$round" bash -c "ours_outdated '$work/cache' '$work/ours-cves.json' --security"
done

# The same answer: every locked package with a newer candidate, per architecture.
python3 - "$work/ours.json" "$work/apt/outdated.txt" "$work/ours-cves.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
mine = {(p.split('/')[1], u['name'], u['locked'], u['candidate'])
        for u in ours['debian'] for p in u['platforms']}
apt = {tuple(line.split()) for line in open(sys.argv[2]) if line.strip()}
print(f"newer candidates: ours {len(mine)}, apt {len(apt)}; the same: {mine == apt}")
for m in sorted(mine ^ apt)[:10]:
    print("  ", "ours only" if m in mine else "apt only", *m)
cves = json.load(open(sys.argv[3]))
ids = {c for u in cves['debian'] for c in (u['cves'] or [])}
security = len(cves['debian'])
print(f"--security: {security} updates, {len(ids)} distinct CVE IDs named")
sys.exit(0 if mine == apt else 1)
PY
best() { for n in "$@"; do secs "$n"; done | sort -n | head -1; }
for kind in ours-cold ours-warm apt-cold apt-warm ours-cves-cold ours-cves-warm; do
    names=(); for r in $(seq "$rounds"); do names+=("$kind-r$r"); done
    printf '%-16s best of %d: %s s\n' "$kind" "$rounds" "$(best "${names[@]}")" | tee -a "$results"
done
echo "results: $results"
