//! One module per command: `exec(args, printer)` parses nothing and prints little; the work
//! is in the library crates.

pub mod build;
pub mod compile;
pub mod debian;
pub mod lock;
