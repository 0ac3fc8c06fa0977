//! One module per command: `exec(args, printer)` parses nothing and prints little; the work
//! is in the library crates.

pub mod base;
pub mod build;
pub mod compile;
pub mod cross;
pub mod debian;
pub mod files;
pub mod layer_cache;
pub mod lock;
pub mod registry;
