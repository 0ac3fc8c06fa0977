//! The one HTTP client of marqo-base and its content-addressed cache.
//!
//! [`Client`] does retries, range requests, redaction of credentials and CA roots chosen as
//! pip chooses them; [`Cache`] stores downloaded files by sha256 and small keyed entries,
//! with atomic writes that are safe across processes. [`escape`] keeps a server's text from
//! acting on a terminal.

mod cache;
mod client;
mod error;
mod file;
mod retry;
mod terminal;
mod tls;

pub use cache::{BlobState, Cache};
pub use client::{
    read_bounded, BodyLimit, ByteRange, Client, ClientOptions, RangeReply, Response, Validators, MAX_BODY,
    MAX_DOWNLOAD,
};
pub use error::{format_size, Error};
pub use redact::{redact, strip_credentials, without_credentials};
pub use retry::backoff;
pub use terminal::{escape, escape_json, escape_lines, is_unsafe};
