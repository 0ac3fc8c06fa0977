//! Multi-platform OCI image layouts of generated layers, for registry tests: each layer is
//! a gzip tar of one file of pseudo-random bytes (deterministic per seed), so sizes can be
//! chosen and distinct images never share a layer by accident.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

/// A blob written into a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// What [`TestImage::write`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenImage {
    /// The index (what the ref points at).
    pub index: WrittenBlob,
    /// `(platform, manifest)` in index order.
    pub manifests: Vec<(String, WrittenBlob)>,
    /// Every config and layer blob.
    pub blobs: Vec<WrittenBlob>,
}

/// An image to generate: platforms, layer sizes, labels, a seed.
#[derive(Debug, Clone)]
pub struct TestImage {
    platforms: Vec<String>,
    layers: Vec<usize>,
    labels: BTreeMap<String, String>,
    seed: u64,
}

impl TestImage {
    /// linux/amd64 and linux/arm64, one 1 KiB layer each, seeded with `seed`.
    pub fn new(seed: u64) -> TestImage {
        TestImage {
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            layers: vec![1024],
            labels: BTreeMap::new(),
            seed,
        }
    }

    /// The platforms (`os/arch`).
    pub fn platforms(mut self, platforms: &[&str]) -> TestImage {
        self.platforms = platforms.iter().map(|p| p.to_string()).collect();
        self
    }

    /// The sizes of each platform's layers' payloads (bytes before tar and gzip).
    pub fn layers(mut self, sizes: &[usize]) -> TestImage {
        self.layers = sizes.to_vec();
        self
    }

    /// A label in every configuration.
    pub fn label(mut self, key: &str, value: &str) -> TestImage {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Writes a new layout at `dir` with the index named `ref_name` in `index.json`.
    pub fn write(&self, dir: &Path, ref_name: &str) -> WrittenImage {
        let blobs_dir = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs_dir).expect("create the layout");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
        let put = |bytes: &[u8]| {
            let hex = hex::encode(Sha256::digest(bytes));
            std::fs::write(blobs_dir.join(&hex), bytes).expect("write blob");
            WrittenBlob { digest: format!("sha256:{hex}"), size: bytes.len() as u64 }
        };
        let mut manifests = Vec::new();
        let mut blobs = Vec::new();
        for (p, platform) in self.platforms.iter().enumerate() {
            let (os, arch) = platform.split_once('/').expect("os/arch");
            let mut layers = Vec::new();
            let mut diff_ids = Vec::new();
            for (l, size) in self.layers.iter().enumerate() {
                let payload = pseudo_random(self.seed ^ ((p as u64) << 32) ^ (l as u64 + 1), *size);
                let (gz, diff_id) = tar_gz(&format!("data/{arch}-{l}.bin"), &payload);
                let blob = put(&gz);
                layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob.digest, "size": blob.size}));
                diff_ids.push(diff_id);
                blobs.push(blob);
            }
            let config = json!({
                "architecture": arch, "os": os,
                "config": {"Labels": self.labels, "Env": ["PATH=/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            });
            let config = put(&serde_json::to_vec(&config).expect("json"));
            blobs.push(config.clone());
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
                "layers": layers,
            });
            manifests.push((platform.clone(), put(&serde_json::to_vec(&manifest).expect("json"))));
        }
        let entries: Vec<_> = manifests
            .iter()
            .map(|(platform, m)| {
                let (os, arch) = platform.split_once('/').expect("os/arch");
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m.digest, "size": m.size,
                       "platform": {"architecture": arch, "os": os}})
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
        let index = put(&serde_json::to_vec(&index).expect("json"));
        let top = json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index.digest, "size": index.size,
            "annotations": {"org.opencontainers.image.ref.name": ref_name}}]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).expect("json")).expect("index.json");
        WrittenImage { index, manifests, blobs }
    }
}

/// `len` bytes of xorshift64* output from `seed`: incompressible, fast, reproducible.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A gzip (stored, level 0: the payload is random) tar of one file; and the tar's digest.
fn tar_gz(name: &str, payload: &[u8]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_mode(0o644);
    header.set_size(payload.len() as u64);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, name, payload).expect("tar");
    let tar = builder.into_inner().expect("tar");
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::none());
    gz.write_all(&tar).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}
