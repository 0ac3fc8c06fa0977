//! The image's bill of materials: what each layer's build learned of its packages (the
//! facts the lock does not record: a Debian package's source package, the licenses packages
//! declare), and the SBOM of a platform made from the lock and those facts.
//!
//! Facts are kept beside each layer in the local and the registry cache, so a layer taken
//! from a cache describes its packages as one just built does, and the SBOM's bytes depend
//! only on the lock (and `SOURCE_DATE_EPOCH`).

use std::collections::HashMap;
use std::path::Path;

use lockfile::{Lock, LockedSource, Manifest, TargetPlatform};
use sbom::{Component, Kind, License, PackageFacts, Sbom};

/// Where the SPDX document of the image's own platform is, in the image.
pub const IMAGE_SBOM_PATH: &str = "/usr/share/marqo-base/sbom.spdx.json";

/// Bounds the `copyright` file read of a package (the largest in Debian are a few MB).
const MAX_COPYRIGHT: u64 = 16 << 20;

/// What the unpacked Debian packages declare: each package's source package (its control
/// file's `Source:`, else itself) and the license of its machine-readable
/// `/usr/share/doc/NAME/copyright` in `root`.
pub fn debian_facts(unpacked: &debian::Unpacked, root: &Path) -> Vec<PackageFacts> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    unpacked
        .packages
        .iter()
        .map(|package| {
            let locked = &package.locked;
            let source = source_of(&package.control.control, &locked.name, &locked.version);
            PackageFacts {
                name: locked.name.clone(),
                version: locked.version.clone(),
                source: Some(source),
                license: copyright_of(&root, &locked.name)
                    .as_deref()
                    .and_then(sbom::license::debian_copyright),
            }
        })
        .collect()
}

/// The `Source:` of a control file: `name`, or `name (version)` when it differs from the
/// binary's; the package itself without one.
pub(crate) fn source_of(control: &str, name: &str, version: &str) -> (String, String) {
    let field = control.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case("source").then(|| value.trim().to_string())
    });
    match field {
        Some(value) if !value.is_empty() => match value.split_once(' ') {
            Some((source, rest)) => {
                let v = rest.trim().trim_start_matches('(').trim_end_matches(')').trim();
                (source.to_string(), if v.is_empty() { version.to_string() } else { v.to_string() })
            }
            None => (value, version.to_string()),
        },
        _ => (name.to_string(), version.to_string()),
    }
}

/// The text of `/usr/share/doc/NAME/copyright` in `root` (a canonical path), following
/// symbolic links only within the root (packages link their doc directory to another
/// package's); `None` when there is none or it leads out.
fn copyright_of(root: &Path, name: &str) -> Option<String> {
    use std::io::Read;
    let path = root.join("usr/share/doc").join(name).join("copyright");
    let real = std::fs::canonicalize(&path).ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(real).ok()?.take(MAX_COPYRIGHT).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// What an installed wheel declares: its license, from its core metadata.
pub fn wheel_facts(name: &str, version: &str, metadata: Option<&str>) -> PackageFacts {
    PackageFacts {
        name: name.to_string(),
        version: version.to_string(),
        source: None,
        license: metadata.and_then(sbom::license::python_metadata),
    }
}

/// The SBOM of `platform`'s image: the lock's packages and files of that platform, with the
/// layers' `debian` and `python` facts, the base image by digest, and `created` (the
/// build's `SOURCE_DATE_EPOCH`, 0 for none).
pub fn platform_sbom(
    manifest: &Manifest,
    lock: &Lock,
    platform: TargetPlatform,
    debian: &[PackageFacts],
    python: &[PackageFacts],
    created: u64,
) -> Sbom {
    let index = |facts: &[PackageFacts]| -> HashMap<(String, String), PackageFacts> {
        facts.iter().map(|f| ((f.name.clone(), f.version.clone()), f.clone())).collect()
    };
    let (debian, python) = (index(debian), index(python));
    let distro = manifest.debian.as_ref().map(|d| d.suite.clone()).unwrap_or_default();
    let mut components = Vec::new();
    for deb in lock.debian.iter().filter(|d| d.platforms.contains(&platform)) {
        let facts = debian.get(&(deb.name.clone(), deb.version.clone()));
        let (source, source_version) =
            facts.and_then(|f| f.source.clone()).unwrap_or_else(|| (deb.name.clone(), deb.version.clone()));
        components.push(Component {
            kind: Kind::Debian { arch: deb.arch.clone(), source, source_version, distro: distro.clone() },
            name: deb.name.clone(),
            version: deb.version.clone(),
            file_name: deb.file.name.clone(),
            sha256: deb.file.sha256.hex().to_string(),
            download: None,
            license: facts.and_then(|f| f.license.clone()),
            dependencies: deb.dependencies.clone().unwrap_or_default(),
        });
    }
    for wheel in lock.python.iter().filter(|p| p.platforms.contains(&platform)) {
        let facts = python.get(&(wheel.name.clone(), wheel.version.clone()));
        components.push(Component {
            kind: Kind::Python,
            name: wheel.name.clone(),
            version: wheel.version.clone(),
            file_name: wheel.file.name.clone(),
            sha256: wheel.file.sha256.hex().to_string(),
            download: None,
            license: facts.and_then(|f| f.license.clone()),
            dependencies: wheel.dependencies.clone().unwrap_or_default(),
        });
    }
    for file in &lock.files {
        let (file_name, download) = match &file.source {
            LockedSource::Url(url) => (file.to.clone(), Some(fetch::strip_credentials(url))),
            LockedSource::Src(src) => (src.clone(), None),
        };
        components.push(Component {
            kind: Kind::File,
            name: file.to.clone(),
            version: String::new(),
            file_name,
            sha256: file.sha256.hex().to_string(),
            download,
            license: None::<License>,
            dependencies: Vec::new(),
        });
    }
    let name = manifest
        .image
        .repository
        .clone()
        .or_else(|| manifest.dir().file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "image".to_string());
    Sbom {
        name,
        platform: platform.to_string(),
        tool: format!("marqo-base-{}", env!("CARGO_PKG_VERSION")),
        created: (created > 0).then_some(created),
        fingerprint: lock.inputs.fingerprint.clone(),
        base: lock
            .base
            .as_ref()
            .map(|b| sbom::Base { reference: b.reference.clone(), digest: b.digest.to_string() }),
        components,
    }
}

/// The largest layer searched for an image's SBOM (ours is a few hundred KB compressed).
const MAX_SBOM_LAYER: u64 = 16 << 20;
/// The largest SBOM read from a layer.
const MAX_SBOM: u64 = 64 << 20;

/// The SBOM of each image of `source` that carries one (at [`IMAGE_SBOM_PATH`] in its last
/// layer, as `build` puts it), to attach to its manifest when pushed. Images built by other
/// tools have none; a layer that cannot be read is skipped with a note in the log.
pub fn attachments(source: &registry::LayoutSource) -> Vec<registry::referrers::Attachment> {
    let mut out = Vec::new();
    for image in &source.images {
        let Ok(manifest) = serde_json::from_slice::<oci::ImageManifest>(image.manifest_bytes()) else {
            continue;
        };
        let Some(last) = manifest.layers.last().filter(|l| l.size <= MAX_SBOM_LAYER) else { continue };
        let (Some(path), Some(compression)) =
            (source.blob_path(&last.digest), image::compression_of(&last.media_type))
        else {
            continue;
        };
        match image::read_layer_member(&path, compression, IMAGE_SBOM_PATH, MAX_SBOM) {
            Ok(Some(document)) => out.push(registry::referrers::Attachment {
                subject: oci::Descriptor::new(
                    image.descriptor.media_type.clone(),
                    image.descriptor.digest.clone(),
                    image.descriptor.size,
                ),
                artifact_type: sbom::SPDX_MEDIA_TYPE.to_string(),
                document: document.into(),
                annotations: vec![
                    ("dev.marqo-base.sbom.platform".to_string(), image.platform.to_string()),
                    (
                        "org.opencontainers.image.title".to_string(),
                        format!("{}.spdx.json", image.platform.to_string().replace('/', "-")),
                    ),
                ],
            }),
            Ok(None) => {}
            Err(e) => tracing::info!("cannot read the last layer of {} for an SBOM: {e}", image.platform),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_packages_from_control_files() {
        let control = "Package: libc6\nSource: glibc\nVersion: 2.31-13\n";
        assert_eq!(source_of(control, "libc6", "2.31-13"), ("glibc".into(), "2.31-13".into()));
        let control = "Package: libgcc-s1\nSource: gcc-10 (10.2.1-6)\nVersion: 10.2.1-6\n";
        assert_eq!(source_of(control, "libgcc-s1", "1:10.2.1-6"), ("gcc-10".into(), "10.2.1-6".into()));
        assert_eq!(source_of("Package: jq\n", "jq", "1.6"), ("jq".into(), "1.6".into()));
    }

    #[test]
    fn copyright_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let doc = root.join("usr/share/doc");
        std::fs::create_dir_all(doc.join("base")).unwrap();
        std::fs::write(doc.join("base/copyright"), "text").unwrap();
        std::os::unix::fs::symlink("base", doc.join("linked")).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("copyright"), "not the image's").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), doc.join("outside")).unwrap();
        assert_eq!(copyright_of(&root, "linked").as_deref(), Some("text"));
        assert_eq!(copyright_of(&root, "outside"), None);
        assert_eq!(copyright_of(&root, "missing"), None);
    }
}
