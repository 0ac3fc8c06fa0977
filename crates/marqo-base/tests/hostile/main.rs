//! Hostile and clumsy inputs against the real binary (issue 13): each area is a module, each
//! case in its own sandbox (cache, HOME, pip configuration, working directory).

#[path = "../../../debian/tests/common/mod.rs"]
mod apt;
#[path = "../common/mod.rs"]
mod common;

mod cache;
mod lockdoc;
mod login;
mod network;
mod pull;
mod signatures;
