//! The image-spec documents: descriptors, manifests, indexes and configurations.
//!
//! Field names are exactly the spec's JSON names. Serialization is deterministic: fields in
//! declaration order, maps as `BTreeMap`, and absent optionals left out (never `null`), so
//! the same value always gives the same bytes and the same digest. Unknown fields are
//! ignored when reading; Docker's v2 schema 2 documents have the same shape and read into
//! the same types.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::media_type::{ANNOTATION_REF_NAME, OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};
use crate::Digest;

/// The `schemaVersion` of every manifest and index we read or write.
pub const SCHEMA_VERSION: u32 = 2;

/// A reference to a blob: its media type, digest and size, with optional platform and
/// annotations (used in an index and in a layout's `index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is (see [`crate::media_type`]).
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The platform of the manifest it points to (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Free-form annotations, for example [`ANNOTATION_REF_NAME`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A descriptor with no platform and no annotations.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self { media_type: media_type.into(), digest, size, platform: None, annotations: None }
    }

    /// This descriptor with `platform` set.
    #[must_use]
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// This descriptor with the annotation `key` set to `value`.
    #[must_use]
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }

    /// The `org.opencontainers.image.ref.name` annotation (the tag in a layout), if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
    }
}

/// The platform an image runs on: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// The CPU architecture, in Go's naming (`amd64`, `arm64`).
    pub architecture: String,
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU variant (`v8` for arm64, `v7` for arm), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform with no variant.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self { architecture: architecture.into(), os: os.into(), variant: None }
    }

    /// Whether `other` is this platform: same OS and architecture, and same variant when
    /// this one names a variant (so `linux/arm64` matches `linux/arm64/v8`).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    /// `os/architecture[/variant]`, as `--platform` takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A string that is not `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a platform: expected `os/architecture[/variant]`, for example `linux/arm64`")]
pub struct PlatformError(String);

impl FromStr for Platform {
    type Err = PlatformError;

    /// Parses `linux/amd64` or `linux/arm64/v8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(s.to_string()));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Self::new(*os, *arch)),
            [os, arch, variant] => {
                Ok(Self { variant: Some((*variant).to_string()), ..Self::new(*os, *arch) })
            }
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

/// A single-platform image: one configuration and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// [`OCI_IMAGE_MANIFEST`] (or Docker's, when read); optional in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image configuration.
    pub config: Descriptor,
    /// The layers, applied in order.
    pub layers: Vec<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// An OCI image manifest of `config` and `layers`.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            media_type: Some(OCI_IMAGE_MANIFEST.to_string()),
            config,
            layers,
            annotations: None,
        }
    }
}

/// A list of manifests, one per platform (or a layout's `index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// [`OCI_IMAGE_INDEX`] (or Docker's manifest list, when read); optional in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests (or indexes), each with its platform when it is an image.
    pub manifests: Vec<Descriptor>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// An OCI image index of `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            media_type: Some(OCI_IMAGE_INDEX.to_string()),
            manifests,
            annotations: None,
        }
    }

    /// The first manifest whose platform [`matches`](Platform::matches) `platform`.
    pub fn find_platform(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
    }

    /// The entry named `name` by its `org.opencontainers.image.ref.name` annotation.
    pub fn find_ref(&self, name: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| d.ref_name() == Some(name))
    }
}

/// An image configuration: what to run, the platform, and the layers' uncompressed digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// When the image was made (RFC 3339); left out for reproducible images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU variant (`v8`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// How to run a container of the image.
    #[serde(default)]
    pub config: RuntimeConfig,
    /// The uncompressed layers' digests.
    pub rootfs: RootFs,
    /// One entry per layer (and per step that made no layer, with `empty_layer`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The configuration's platform.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The `config` object of an image configuration: how a container starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// The user (`name`, `uid`, `uid:gid`).
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment, `NAME=value` each.
    #[serde(rename = "Env", default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The entry point; `None` leaves it unset (an empty list is kept: it clears a base's).
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments; `None` leaves them unset.
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(rename = "WorkingDir", default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels (`org.opencontainers.image.*` and others).
    #[serde(rename = "Labels", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The `rootfs` object of an image configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sha256 of each layer's uncompressed tar, in layer order.
    pub diff_ids: Vec<Digest>,
}

impl RootFs {
    /// A `layers` root filesystem of these uncompressed layer digests.
    pub fn layers(diff_ids: Vec<Digest>) -> Self {
        Self { kind: "layers".to_string(), diff_ids }
    }
}

/// One step in the making of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When (RFC 3339); left out for reproducible images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// What made it, for people reading `docker history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the step made no layer (so it has no entry in `diff_ids`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::{DOCKER_MANIFEST, OCI_IMAGE_CONFIG, OCI_LAYER_TAR_GZIP};

    #[test]
    fn manifest_serializes_without_nulls_in_spec_order() {
        let config = Descriptor::new(OCI_IMAGE_CONFIG, Digest::of_bytes(b"c"), 1);
        let layer = Descriptor::new(OCI_LAYER_TAR_GZIP, Digest::of_bytes(b"l"), 2);
        let json = serde_json::to_string(&ImageManifest::new(config, vec![layer])).unwrap();
        assert!(json.starts_with(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"#
        ));
        assert!(!json.contains("null") && !json.contains("annotations") && !json.contains("platform"));
    }

    #[test]
    fn config_uses_the_spec_names() {
        let config = ImageConfig {
            created: None,
            author: None,
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
            config: RuntimeConfig {
                env: vec!["A=1".into()],
                cmd: Some(vec!["/bin/sh".into()]),
                labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
                ..RuntimeConfig::default()
            },
            rootfs: RootFs::layers(vec![Digest::of_bytes(b"")]),
            history: vec![History { created_by: Some("x".into()), ..History::default() }],
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"architecture":"arm64","os":"linux","variant":"v8","config":{{"Env":["A=1"],"Cmd":["/bin/sh"],"Labels":{{"a":"1","b":"2"}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created_by":"x"}}]}}"#,
                Digest::of_bytes(b"")
            )
        );
        assert_eq!(serde_json::from_str::<ImageConfig>(&json).unwrap(), config);
        assert_eq!(config.platform().variant.as_deref(), Some("v8"));
    }

    #[test]
    fn reads_a_docker_manifest() {
        let d = Digest::of_bytes(b"");
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":3,"digest":"{d}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":5,"digest":"{d}","urls":["x"]}}]}}"#
        );
        let m: ImageManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(m.media_type.as_deref(), Some(DOCKER_MANIFEST));
        assert_eq!(m.layers[0].size, 5);
    }

    #[test]
    fn platform_matching() {
        let idx = ImageIndex::new(vec![
            Descriptor::new(OCI_IMAGE_MANIFEST, Digest::of_bytes(b"a"), 1)
                .with_platform(Platform::new("linux", "amd64")),
            Descriptor::new(OCI_IMAGE_MANIFEST, Digest::of_bytes(b"b"), 1)
                .with_platform(Platform { variant: Some("v8".into()), ..Platform::new("linux", "arm64") }),
        ]);
        let arm = idx.find_platform(&Platform::new("linux", "arm64")).unwrap();
        assert_eq!(arm.digest, Digest::of_bytes(b"b"));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(v8.to_string(), "linux/arm64/v8");
        assert_eq!("linux/amd64".parse::<Platform>().unwrap(), Platform::new("linux", "amd64"));
        for bad in ["linux", "linux//x", "a/b/c/d", ""] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        let v7 = Platform { variant: Some("v7".into()), ..Platform::new("linux", "arm64") };
        assert!(idx.find_platform(&v7).is_none());
    }
}
