//! Fuzzing on stable Rust: a small deterministic mutation engine ([`engine`]) and one target
//! per parser of outside data ([`targets`]), run over the checked-in corpus in `corpus/`.
//!
//! `cargo test -p fuzz` runs every target for a short fixed budget (CI); longer runs by hand:
//!
//! ```text
//! FUZZ_SECONDS=60 cargo test -p fuzz --release -- --nocapture --test-threads 1
//! ```
//!
//! prints the executions per target. An input that panics is written to `crashes/` and fails
//! the test; fix the parser and move the file into the target's corpus directory as a
//! regression input. Each target runs on a thread with the 2 MiB stack of the threads that
//! parse in real runs: a stack overflow aborts the whole test process ("has overflowed its
//! stack"), and `FUZZ_SAVE_LAST=1` writes every input to `crashes/<target>.last` before it
//! runs, so the input that killed the process is kept.

pub mod engine;
pub mod targets;

pub use engine::{fuzz, Budget, Report, Rng};
pub use targets::{Target, TARGETS};
