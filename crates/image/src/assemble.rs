//! Built layers and an image's settings assembled into OCI documents: the configuration
//! (merged over a base image's, as a Dockerfile's `FROM` would), one manifest per platform,
//! and the index of the platforms.
//!
//! [`assemble`] is pure; [`Image::write_to`] and [`write_index`] store the documents in an
//! [`OciLayout`]. The same inputs give the same bytes: maps are sorted, nothing depends on
//! the clock, and `created` is left out unless [`ImageSpec::created`] gives it.

use std::collections::BTreeMap;

use oci::media_type::{OCI_IMAGE_CONFIG, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};
use oci::{
    Descriptor, Digest, History, ImageConfig, ImageIndex, ImageManifest, OciLayout, Platform, RootFs,
    RuntimeConfig,
};

use crate::LayerInfo;

/// The `PATH` of an image whose settings (and base) do not set one: Docker's default.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The label that carries the input fingerprint of the lock an image was built from.
pub const FINGERPRINT_LABEL: &str = "dev.marqo-base.lock-fingerprint";

/// What an image's configuration says besides its layers: the platform and how a container
/// starts. Each setting left unset keeps the base image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The platform; also the platform of the manifest's descriptor in the index.
    pub platform: Platform,
    /// Environment variables, over the base's; `PATH` is [`DEFAULT_PATH`] when neither sets it.
    pub env: BTreeMap<String, String>,
    /// The entry point. Setting it also drops the base's `Cmd` (as a Dockerfile's
    /// `ENTRYPOINT` does), unless [`ImageSpec::cmd`] is set too.
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments.
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    pub workdir: Option<String>,
    /// The user (`name`, `uid`, `uid:gid`).
    pub user: Option<String>,
    /// Labels, over the base's.
    pub labels: BTreeMap<String, String>,
    /// The lock's input fingerprint, recorded as the label [`FINGERPRINT_LABEL`] (over a label
    /// of that name in [`ImageSpec::labels`] or the base).
    pub fingerprint: Option<String>,
    /// When the image was made (RFC 3339), for the configuration and every new history
    /// entry; `None` leaves it out, as a reproducible image should.
    pub created: Option<String>,
}

impl ImageSpec {
    /// An image for `platform` that sets nothing.
    pub fn new(platform: Platform) -> ImageSpec {
        ImageSpec {
            platform,
            env: BTreeMap::new(),
            entrypoint: None,
            cmd: None,
            workdir: None,
            user: None,
            labels: BTreeMap::new(),
            fingerprint: None,
            created: None,
        }
    }
}

/// The image a build starts from: its configuration (with its `diff_ids` and history) and
/// its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The base's configuration.
    pub config: ImageConfig,
    /// The base's layer descriptors, as its manifest has them.
    pub layers: Vec<Descriptor>,
}

/// A layer built for the image, with the history entry that says what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// The written layer.
    pub info: LayerInfo,
    /// The history entry's `created_by`, for people reading `docker history`.
    pub created_by: String,
}

/// An assembled single-platform image: its configuration and layer descriptors, bottom
/// first (the base's, then the built ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The configuration.
    pub config: ImageConfig,
    /// The manifest's layers.
    pub layers: Vec<Descriptor>,
}

/// The image of `layers` on `base` (if any) with the settings of `spec`.
///
/// The base's settings come first and `spec`'s over them: `Env` and `Labels` are merged key
/// by key, the other settings replaced when `spec` sets them. The base's `diff_ids`, history
/// and layers come before the built layers', each of which gets one history entry.
pub fn assemble(spec: &ImageSpec, base: Option<&Base>, layers: &[ImageLayer]) -> Image {
    let base_config = base.map(|b| &b.config);
    let base_runtime = base_config.map(|c| &c.config);

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for entry in base_runtime.map(|r| r.env.as_slice()).unwrap_or_default() {
        if let Some((key, value)) = entry.split_once('=') {
            env.insert(key.to_string(), value.to_string());
        }
    }
    env.extend(spec.env.clone());
    env.entry("PATH".to_string()).or_insert_with(|| DEFAULT_PATH.to_string());

    let mut labels = base_runtime.map(|r| r.labels.clone()).unwrap_or_default();
    labels.extend(spec.labels.clone());
    if let Some(fingerprint) = &spec.fingerprint {
        labels.insert(FINGERPRINT_LABEL.to_string(), fingerprint.clone());
    }

    let (entrypoint, cmd) = match base_runtime {
        // The base's entry point, unless the spec sets one (which drops the base's arguments
        // too: they were meant for the base's entry point).
        Some(base) if spec.entrypoint.is_none() => {
            (base.entrypoint.clone(), spec.cmd.clone().or_else(|| base.cmd.clone()))
        }
        _ => (spec.entrypoint.clone(), spec.cmd.clone()),
    };

    let mut diff_ids: Vec<Digest> = base_config.map(|c| c.rootfs.diff_ids.clone()).unwrap_or_default();
    let mut history: Vec<History> = base_config.map(|c| c.history.clone()).unwrap_or_default();
    // A base layer's annotations belong to the base's manifest: only what locates the blob
    // is kept.
    let mut descriptors: Vec<Descriptor> = base
        .map(|b| b.layers.iter().map(|d| Descriptor::new(d.media_type.clone(), d.digest.clone(), d.size)))
        .into_iter()
        .flatten()
        .collect();
    for layer in layers {
        let info = &layer.info;
        diff_ids.push(info.diff_id.clone());
        history.push(History {
            created: spec.created.clone(),
            created_by: Some(layer.created_by.clone()),
            ..History::default()
        });
        descriptors.push(Descriptor::new(info.media_type(), info.digest.clone(), info.size));
    }

    let config = ImageConfig {
        created: spec.created.clone(),
        author: None,
        architecture: spec.platform.architecture.clone(),
        os: spec.platform.os.clone(),
        variant: spec.platform.variant.clone(),
        config: RuntimeConfig {
            user: spec.user.clone().or_else(|| base_runtime.and_then(|r| r.user.clone())),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint,
            cmd,
            working_dir: spec.workdir.clone().or_else(|| base_runtime.and_then(|r| r.working_dir.clone())),
            labels,
        },
        rootfs: RootFs::layers(diff_ids),
        history,
    };
    Image { config, layers: descriptors }
}

impl Image {
    /// The manifest of this image, once its configuration is stored as `config`.
    pub fn manifest(&self, config: Descriptor) -> ImageManifest {
        ImageManifest::new(config, self.layers.clone())
    }

    /// Stores the configuration and the manifest in `layout` (the layers' blobs are the
    /// caller's to put there); returns the manifest's descriptor with the image's platform,
    /// as the index lists it.
    pub fn write_to(&self, layout: &OciLayout) -> Result<Descriptor, oci::Error> {
        let config = layout.put_json(&self.config, OCI_IMAGE_CONFIG)?;
        let manifest = layout.put_json(&self.manifest(config), OCI_IMAGE_MANIFEST)?;
        Ok(manifest.with_platform(self.config.platform()))
    }
}

/// Stores the index of `manifests` (one per platform, in the order given) in `layout`;
/// returns its descriptor, for [`OciLayout::set_ref`].
pub fn write_index(layout: &OciLayout, manifests: Vec<Descriptor>) -> Result<Descriptor, oci::Error> {
    layout.put_json(&ImageIndex::new(manifests), OCI_IMAGE_INDEX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;

    fn sha(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    fn layer(n: u8, created_by: &str) -> ImageLayer {
        ImageLayer {
            info: LayerInfo {
                diff_id: Digest::parse(&sha(n)).unwrap(),
                digest: Digest::parse(&sha(n + 100)).unwrap(),
                size: 10 + u64::from(n),
                uncompressed_size: 100,
                compression: Compression::Gzip,
            },
            created_by: created_by.to_string(),
        }
    }

    fn arm64() -> ImageSpec {
        ImageSpec::new(Platform::new("linux", "arm64"))
    }

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    /// A base with one layer, an entry point with arguments, a user, a workdir, env and labels.
    fn base() -> Base {
        let layer =
            Descriptor::new(oci::media_type::DOCKER_LAYER_TAR_GZIP, Digest::parse(&sha(200)).unwrap(), 7)
                .with_annotation("from", "the base's manifest");
        Base {
            config: ImageConfig {
                created: Some("2020-01-01T00:00:00Z".to_string()),
                author: None,
                architecture: "arm64".to_string(),
                os: "linux".to_string(),
                variant: None,
                config: RuntimeConfig {
                    user: Some("base".to_string()),
                    env: vec!["PATH=/base/bin".to_string(), "LANG=C".to_string(), "KEEP=1".to_string()],
                    entrypoint: strings(&["/base/entry"]),
                    cmd: strings(&["--base-arg"]),
                    working_dir: Some("/base".to_string()),
                    labels: [("base", "yes"), ("both", "base")]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                },
                rootfs: RootFs::layers(vec![Digest::parse(&sha(201)).unwrap()]),
                history: vec![History { created_by: Some("base step".to_string()), ..History::default() }],
            },
            layers: vec![layer],
        }
    }

    #[test]
    fn without_a_base_path_defaults_and_the_spec_is_taken_as_it_is() {
        let spec = ImageSpec {
            env: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
            entrypoint: strings(&["/usr/bin/python3"]),
            fingerprint: Some("sha256:f".to_string()),
            ..arm64()
        };
        let image = assemble(&spec, None, &[layer(1, "one")]);
        let runtime = &image.config.config;
        assert_eq!(runtime.env, ["LANG=C.UTF-8", &format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(runtime.entrypoint, strings(&["/usr/bin/python3"]));
        assert_eq!((&runtime.cmd, &runtime.user, &runtime.working_dir), (&None, &None, &None));
        assert_eq!(runtime.labels[FINGERPRINT_LABEL], "sha256:f");
        assert_eq!((image.config.os.as_str(), image.config.architecture.as_str()), ("linux", "arm64"));

        let spec = ImageSpec { env: [("PATH".to_string(), "/mine".to_string())].into(), ..arm64() };
        let image = assemble(&spec, None, &[]);
        assert_eq!(image.config.config.env, ["PATH=/mine"]);
        assert!(image.config.config.labels.is_empty(), "no fingerprint, no label");
    }

    #[test]
    fn the_base_settings_are_kept_unless_the_spec_sets_them() {
        let spec = ImageSpec {
            env: [("LANG", "C.UTF-8"), ("APP", "1")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            labels: [("both".to_string(), "mine".to_string())].into(),
            fingerprint: Some("sha256:f".to_string()),
            ..arm64()
        };
        let image = assemble(&spec, Some(&base()), &[]);
        let runtime = &image.config.config;
        assert_eq!(runtime.env, ["APP=1", "KEEP=1", "LANG=C.UTF-8", "PATH=/base/bin"]);
        let labels: Vec<(&str, &str)> =
            runtime.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("base", "yes"), ("both", "mine"), (FINGERPRINT_LABEL, "sha256:f")]);
        assert_eq!(runtime.entrypoint, strings(&["/base/entry"]));
        assert_eq!(runtime.cmd, strings(&["--base-arg"]));
        assert_eq!(runtime.user.as_deref(), Some("base"));
        assert_eq!(runtime.working_dir.as_deref(), Some("/base"));
        assert_eq!(image.config.created, None, "the base's time is not the image's");

        // A `cmd` alone keeps the base's entry point.
        let spec = ImageSpec { cmd: strings(&["-c", "1"]), ..arm64() };
        let runtime = assemble(&spec, Some(&base()), &[]).config.config;
        assert_eq!((runtime.entrypoint, runtime.cmd), (strings(&["/base/entry"]), strings(&["-c", "1"])));

        // An entry point drops the base's arguments; user and workdir replace the base's.
        let spec = ImageSpec {
            entrypoint: strings(&["/bin/sh"]),
            user: Some("1000".to_string()),
            workdir: Some("/app".to_string()),
            ..arm64()
        };
        let runtime = assemble(&spec, Some(&base()), &[]).config.config;
        assert_eq!((runtime.entrypoint, runtime.cmd), (strings(&["/bin/sh"]), None));
        assert_eq!((runtime.user.as_deref(), runtime.working_dir.as_deref()), (Some("1000"), Some("/app")));
    }

    #[test]
    fn base_layers_diff_ids_and_history_come_first() {
        let spec = ImageSpec { created: Some("2023-11-14T22:13:20Z".to_string()), ..arm64() };
        let image = assemble(&spec, Some(&base()), &[layer(1, "one"), layer(2, "two")]);
        let diff_ids: Vec<&str> = image.config.rootfs.diff_ids.iter().map(Digest::as_str).collect();
        assert_eq!(diff_ids, [sha(201), sha(1), sha(2)]);
        let history: Vec<(Option<&str>, Option<&str>)> =
            image.config.history.iter().map(|h| (h.created.as_deref(), h.created_by.as_deref())).collect();
        assert_eq!(
            history,
            [
                (None, Some("base step")),
                (Some("2023-11-14T22:13:20Z"), Some("one")),
                (Some("2023-11-14T22:13:20Z"), Some("two"))
            ]
        );
        assert_eq!(image.config.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        let layers: Vec<(&str, &str, u64)> =
            image.layers.iter().map(|d| (d.media_type.as_str(), d.digest.as_str(), d.size)).collect();
        assert_eq!(
            layers,
            [
                (oci::media_type::DOCKER_LAYER_TAR_GZIP, sha(200).as_str(), 7),
                (oci::media_type::OCI_LAYER_TAR_GZIP, sha(101).as_str(), 11),
                (oci::media_type::OCI_LAYER_TAR_GZIP, sha(102).as_str(), 12),
            ]
        );
        assert!(image.layers.iter().all(|d| d.annotations.is_none() && d.platform.is_none()));
    }

    #[test]
    fn zstd_layers_have_the_zstd_media_type() {
        let mut zstd = layer(1, "one");
        zstd.info.compression = Compression::Zstd;
        let image = assemble(&arm64(), None, &[zstd]);
        assert_eq!(image.layers[0].media_type, oci::media_type::OCI_LAYER_TAR_ZSTD);
    }

    #[test]
    fn the_same_inputs_give_the_same_documents() {
        let spec = || ImageSpec {
            env: [("B", "2"), ("A", "1")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            labels: [("z".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())].into(),
            fingerprint: Some("sha256:f".to_string()),
            ..arm64()
        };
        let layers = [layer(1, "one"), layer(2, "two")];
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        let (one, two) = (OciLayout::create(&one).unwrap(), OciLayout::create(&two).unwrap());
        let first = assemble(&spec(), Some(&base()), &layers);
        let second = assemble(&spec(), Some(&base()), &layers);
        assert_eq!(first, second);
        let (m1, m2) = (first.write_to(&one).unwrap(), second.write_to(&two).unwrap());
        assert_eq!(m1, m2);
        assert_eq!(m1.platform, Some(Platform::new("linux", "arm64")));
        assert_eq!(m1.media_type, OCI_IMAGE_MANIFEST);
        let (i1, i2) = (write_index(&one, vec![m1.clone()]).unwrap(), write_index(&two, vec![m2]).unwrap());
        assert_eq!(i1, i2);
        assert_eq!(i1.media_type, OCI_IMAGE_INDEX);

        // What is stored is what `assemble` made, and no time unless one is given.
        let manifest = one.read_manifest(&m1).unwrap();
        assert_eq!(manifest.layers, first.layers);
        let config = one.read_config(&manifest.config).unwrap();
        assert_eq!(config, first.config);
        let text = String::from_utf8(one.read_blob(&manifest.config.digest).unwrap()).unwrap();
        assert!(!text.contains("\"created\""), "{text}");
        assert!(text.find("\"A=1\"") < text.find("\"B=2\""), "{text}");
        let index = one.read_image_index(&i1).unwrap();
        assert_eq!(index.manifests, [m1]);
    }
}
