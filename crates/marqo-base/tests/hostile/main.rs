//! Hostile and clumsy inputs against the real binary (issue 13): each area is a module.

#[path = "../../../debian/tests/common/mod.rs"]
mod apt;
#[path = "../common/mod.rs"]
mod common;

mod lockdoc;
mod network;
