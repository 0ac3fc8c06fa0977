//! The docker-archive format (`docker save` / `docker load`): one tar holding
//! `manifest.json`, the configuration as `<hex>.json` and each layer as `<hex>/layer.tar`.
//!
//! Layers are stored as they are in the layout (gzip-compressed ones too: `docker load` and
//! skopeo detect the compression). The tar is deterministic: entries sorted by name, mtime
//! 0, uid/gid 0, fixed modes, no user or group names.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::{atomic, Descriptor, Digest, Error, OciLayout};

/// One image in `manifest.json`.
#[derive(Serialize)]
struct ArchiveManifest<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: &'a [String],
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// What an archive entry holds.
enum Entry {
    Dir,
    Bytes(Vec<u8>),
    /// A layer blob, streamed from the layout, of this size.
    Blob(Digest, u64),
}

/// Writes the single-platform image `manifest` (a descriptor of an image manifest in
/// `layout`) as a docker-archive at `out`, tagged `repo_tags` (for example
/// `marqoai/marqo-base:42`; may be empty). The archive is written to a temporary file beside
/// `out` and renamed into place. Each blob is verified against its digest as it is copied.
pub fn write_docker_archive(
    layout: &OciLayout,
    manifest: &Descriptor,
    repo_tags: &[String],
    out: &Path,
) -> Result<(), Error> {
    let image = layout.read_manifest(manifest)?;
    // Reading the configuration checks that it is one (and verifies it); the archive keeps
    // its exact bytes so that the image ID (the configuration's digest) is unchanged.
    layout.read_config(&image.config)?;
    let config_bytes = layout.read_blob(&image.config.digest)?;

    let mut entries = BTreeMap::new();
    let config_name = format!("{}.json", image.config.digest.hex());
    entries.insert(config_name.clone(), Entry::Bytes(config_bytes));
    let mut layer_names = Vec::with_capacity(image.layers.len());
    for layer in &image.layers {
        let dir = layer.digest.hex().to_string();
        let name = format!("{dir}/layer.tar");
        entries.insert(format!("{dir}/"), Entry::Dir);
        entries.insert(name.clone(), Entry::Blob(layer.digest.clone(), layer.size));
        layer_names.push(name);
    }
    let archive_manifest = [ArchiveManifest { config: config_name, repo_tags, layers: layer_names }];
    let manifest_json = serde_json::to_vec(&archive_manifest)
        .map_err(|source| Error::Serialize { media_type: "docker-archive manifest.json".into(), source })?;
    entries.insert("manifest.json".to_string(), Entry::Bytes(manifest_json));

    let file = atomic::temp_beside(out)?;
    let mut builder = tar::Builder::new(io::BufWriter::new(file));
    for (name, entry) in entries {
        let add = |e| Error::ArchiveEntry { path: out.to_path_buf(), entry: name.clone(), source: e };
        match entry {
            Entry::Dir => {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                builder.append_data(&mut header, &name, io::empty()).map_err(add)?;
            }
            Entry::Bytes(bytes) => {
                let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
                builder.append_data(&mut header, &name, bytes.as_slice()).map_err(add)?;
            }
            Entry::Blob(digest, size) => {
                let mut blob = layout.open_blob(&digest)?;
                if blob.size() != size {
                    return Err(Error::SizeMismatch {
                        path: blob.path().to_path_buf(),
                        expected: size,
                        actual: blob.size(),
                    });
                }
                let mut header = header(tar::EntryType::Regular, 0o644, size);
                builder.append_data(&mut header, &name, (&mut blob).take(size)).map_err(add)?;
                blob.verify()?;
            }
        }
    }
    let writer = builder.into_inner().map_err(Error::io("write", out))?;
    let mut file = writer.into_inner().map_err(|e| Error::io("write", out)(e.into_error()))?;
    file.flush().map_err(Error::io("write", out))?;
    atomic::persist(file, out)
}

/// A header with the fixed owner, mode and time every entry gets.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}
