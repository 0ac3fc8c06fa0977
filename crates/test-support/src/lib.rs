//! A real Python package index for integration tests: builders that publish generated
//! wheels and sdists into a temp directory, and a small HTTP/1.1 server on `127.0.0.1`
//! that serves it as a PEP 503/691 simple index.
//!
//! ```no_run
//! use test_support::{Index, Sdist, Wheel};
//!
//! let index = Index::new().pep658(true);
//! Wheel::new("foo", "1.0").requires("bar>=1").publish(&index);
//! Wheel::new("bar", "1.2").publish(&index);
//! Sdist::new("baz", "0.1").dynamic("Requires-Dist").build_requires_dist("bar").publish(&index);
//! let server = index.serve();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! ```
//!
//! For registry tests: [`DockerRegistry`] runs Debian's `docker-registry` on a free port,
//! [`Proxy`] sits in front of it (faults, hooks, a Bearer-token gate), and [`TestImage`]
//! writes multi-platform OCI layouts of generated layers. [`Podman`] runs built images in a
//! real container runtime.

mod index;
mod metadata;
mod oci_image;
mod podman;
mod proxy;
mod pytorch;
mod registry;
pub mod scripted;
mod sdist;
mod server;
mod util;
mod wheel;

pub use index::Index;
pub use metadata::DEFAULT_UPLOAD_TIME;
pub use oci_image::{pseudo_random, TestImage, WrittenBlob, WrittenImage};
pub use podman::{podman_missing, Podman, Ran};
pub use proxy::{Logged, Proxy};
pub use pytorch::{publish_default_torch, torch_cu116_index};
pub use registry::{make_certificates, registry_tools_missing, DockerRegistry, RegistryConfig};
pub use sdist::{Sdist, BACKEND_SRC};
pub use server::Server;
pub use util::{normalize, say_skipped, sha256_hex};
pub use wheel::Wheel;
