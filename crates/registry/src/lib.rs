//! Talking to OCI registries (the distribution API): push an image from an OCI image
//! layout, pull one into a layout or a docker-archive, log in and out.
//!
//! - [`Reference`]: `HOST[:PORT]/REPO[:TAG][@DIGEST]`, normalised as Docker does.
//! - [`DockerConfig`], [`Credentials`]: Docker's `config.json` and credential helpers.
//! - [`RegistryClient`]: one registry: HTTPS (plain HTTP for loopback or `--insecure`),
//!   Basic and Bearer-token authentication, retries with backoff.
//! - [`push`]: plan ([`plan_push`]) and push ([`execute_push`]) with mounts, chunked and
//!   resumable uploads, manifests before tags; [`next_tag`] for `--tag next`.
//! - [`pull`]: manifests, platform choice, resumable hash-checked blob downloads, and the
//!   OCI layout or docker-archive written from them.
//! - [`layer_cache`]: a layer cache kept in a registry repository (`--cache REF`).
//! - [`signature`]: cosign's signature manifests (`sha256-HEX.sig`): read, and append to.
//! - [`PushRecord`]: what a push did, as JSON.

mod api;
mod challenge;
mod client;
mod credentials;
mod error;
pub mod index;
pub mod layer_cache;
pub mod pull;
pub mod push;
mod record;
mod reference;
pub mod referrers;
pub mod signature;
mod tags;
mod upload;

pub use api::{pull_scope, push_scope, RemoteManifest, MAX_CONFIG, MAX_MANIFEST, MAX_TAG_LIST, MAX_TAG_PAGE};
pub use challenge::{parse_challenge, Challenge};
pub use client::{ClientOptions, RegistryClient, MAX_TOKEN_REPLY};
pub use credentials::{Credentials, DockerConfig};
pub use error::Error;
pub use index::{execute_index, plan_index, IndexPush};
pub use pull::{fetch_blobs, resolve_pull, write_archive, write_oci, Pulled};
pub use push::{execute_push, plan_push, BlobAction, LayoutSource, Plan, PushOptions, Pushed, Race, TagSpec};
pub use record::{PlatformRecord, PushRecord};
pub use reference::{
    api_host, check_tag, credentials_key, is_loopback, parse_registry, Reference, ReferenceError, DOCKER_HUB,
};
pub use signature::{read_signatures, signature_tag, SameSigner, Signature, SignatureRecord, ToSign};
pub use tags::{next_link, next_tag};
pub use upload::{ProgressFn, Sent};
