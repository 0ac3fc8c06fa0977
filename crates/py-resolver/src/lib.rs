//! py-resolver
