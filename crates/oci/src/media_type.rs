//! Media types of the OCI image spec (which we write) and of Docker's image manifest v2
//! schema 2 (which we also read: registries and `docker save` still serve it).

/// An OCI image index (a list of per-platform manifests).
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest.
pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image configuration.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A Docker manifest list (v2 schema 2), the Docker counterpart of an image index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image manifest (v2 schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker image configuration.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A gzip-compressed Docker layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation that names a manifest or index in a layout's `index.json` (its tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Whether `media_type` is an index or a manifest list (OCI or Docker).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_IMAGE_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether `media_type` is a single-platform image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_IMAGE_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Whether `media_type` is an image configuration (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_IMAGE_CONFIG || media_type == DOCKER_CONFIG
}

/// Whether `media_type` is a layer we know (OCI tar, tar+gzip, tar+zstd, or Docker gzip).
pub fn is_layer(media_type: &str) -> bool {
    matches!(media_type, OCI_LAYER_TAR | OCI_LAYER_TAR_GZIP | OCI_LAYER_TAR_ZSTD | DOCKER_LAYER_TAR_GZIP)
}
