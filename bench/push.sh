#!/usr/bin/env bash
# Times `marqo-base push` against `skopeo copy --all` pushing the same multi-platform OCI
# layout to a fresh local docker-registry each (cold), then a no-op re-push of each (every
# blob already there); prints wall time, peak memory and the ratios.
#
#   bench/push.sh                       # generates a ~300 MB two-platform layout (BENCH_MB=...)
#   BENCH_LAYOUT=out bench/push.sh      # or pushes a layout made by `marqo-base build --oci out`
#   BENCH_DIR=/tmp/x bench/push.sh      # keeps the work dir
#
# Needs docker-registry and skopeo (apt-get install docker-registry skopeo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d /tmp/bench-push.XXXXXX)}
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marqo-base-target}"

echo "== building marqo-base (release)"
cargo build --release -q -p marqo-base --manifest-path "$root/Cargo.toml"
ours="$CARGO_TARGET_DIR/release/marqo-base"

layout=${BENCH_LAYOUT:-}
if [ -z "$layout" ]; then
    layout="$work/layout"
    if [ ! -f "$layout/index.json" ]; then
        mb=${BENCH_MB:-300}
        echo "== generating a two-platform layout of about $mb MB in $layout"
        python3 - "$layout" "$mb" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, total_mb = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
# Per platform: one big layer (half), the rest in 8 smaller ones, like a built image.
per_platform = total_mb * 1024 * 1024 // 2
sizes = [per_platform // 2] + [per_platform // 16] * 8
entries = []
for arch in ("amd64", "arm64"):
    layers, diff_ids = [], []
    for i, size in enumerate(sizes):
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
            info = tarfile.TarInfo(f"data/{arch}-{i}.bin")
            info.size, info.mtime = size, 0
            t.addfile(info, io.BytesIO(os.urandom(size)))
        raw = tar.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       **put(gzip.compress(raw, compresslevel=1, mtime=0))})
    config = put(json.dumps({"architecture": arch, "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                               "layers": layers}).encode())
    entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
                    "platform": {"architecture": arch, "os": "linux"}})
index = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
               **index, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
PY
    fi
fi
ref=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$layout/index.json")
echo "layout: $layout ($(du -sh "$layout/blobs" | cut -f1), ref $ref); skopeo: $(skopeo --version)"

results="$work/results.txt"
: > "$results"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

trap stop_registry EXIT

echo "== marqo-base push (fresh registry, then a no-op re-push)"
start_registry ours
export MARQO_BASE_CACHE_DIR="$work/cache-ours"
rm -rf "$MARQO_BASE_CACHE_DIR"
measure ours-cold "$ours" push "127.0.0.1:$port/bench" --oci "$layout" --ref "$ref" --tag 1 --yes -q
measure ours-noop "$ours" push "127.0.0.1:$port/bench" --oci "$layout" --ref "$ref" --tag 2 --yes -q
skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/bench:1" | sha256sum | sed 's/^/ours index: sha256:/'
stop_registry

echo "== skopeo copy --all (fresh registry, then a no-op re-push)"
start_registry skopeo
measure skopeo-cold skopeo copy -q --all --dest-tls-verify=false "oci:$layout:$ref" "docker://127.0.0.1:$port/bench:1"
measure skopeo-noop skopeo copy -q --all --dest-tls-verify=false "oci:$layout:$ref" "docker://127.0.0.1:$port/bench:2"
skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/bench:1" | sha256sum | sed 's/^/skopeo index: sha256:/'
stop_registry

echo "== ratios (skopeo / ours: above 1 means ours is faster)"
for kind in cold noop; do
    awk -v a="$(secs "skopeo-$kind")" -v b="$(secs "ours-$kind")" -v k="$kind" \
        'BEGIN { if (a > 0 && b > 0) printf "%-6s %.2fx\n", k, a / b }'
done
echo "(results in $results, logs in $work)"
