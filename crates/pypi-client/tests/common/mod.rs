//! The scripted test server lives in `test-support`, shared with the other client crates.

pub use test_support::scripted::*;
