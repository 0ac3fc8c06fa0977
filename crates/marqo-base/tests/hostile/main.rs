//! Hostile and clumsy inputs against the real binary (issue 13): each area is a module, each
//! case in its own sandbox (cache, HOME, pip configuration, working directory).

#[path = "../../../debian/tests/common/mod.rs"]
mod apt;
#[path = "../common/mod.rs"]
mod common;

mod bounds;
mod cache;
mod credentials;
mod layer_cache_trust;
mod lockdoc;
mod login;
mod network;
mod pull;
mod signatures;
mod terminal;
