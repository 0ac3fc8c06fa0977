//! One module per command: `exec(args, printer)` checks the arguments, calls the library
//! (the `ops` crate and the format crates), and prints.

pub mod build;
pub mod cache;
pub mod compile;
pub mod debian;
pub mod graph;
pub mod lock;
pub mod outdated;
pub mod registry;
pub mod sign;
