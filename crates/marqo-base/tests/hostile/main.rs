//! Hostile and clumsy inputs (issue 13), each as a run of the real binary: one module per
//! area.

#[path = "../common/mod.rs"]
mod common;

mod network;
