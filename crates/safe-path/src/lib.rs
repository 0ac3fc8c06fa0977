//! The one place that decides whether a path from an archive (a tar or zip member name, a
//! link target) stays inside the root it is unpacked to, and what it normalizes to.
//!
//! Every unpacker of untrusted archives uses it: `[[file]]` extraction into a layer (ops),
//! sdist unpacking (pypi-client), a `.deb`'s `data.tar` (debian), layer entries and wheel
//! installs (image). Each keeps its own error type and wording and maps a [`Refusal`] to it;
//! what differs between archive kinds (is a leading `/` an error or the root? is `\` a
//! separator?) is a [`Rules`] value each caller states once.
//!
//! The checks are lexical: no file system is consulted, so a caller that writes to disk
//! must still not write through a symlink it created (see `debian::unpack`).

mod path;

pub use path::{normalize, resolve, Absolute, PathText, Refusal, Rules, Windows};
