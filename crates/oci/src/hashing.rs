//! Hashing while streaming: a blob's [`Digest`] computed as it is written or read.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// Hashes everything written through it (or read through it) with sha256 and counts the bytes.
pub(crate) struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    size: u64,
}

impl<T> Hashing<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self { inner, hasher: Sha256::new(), size: 0 }
    }

    /// The digest and size of the bytes seen so far, and the wrapped value.
    pub(crate) fn finish(self) -> (Digest, u64, T) {
        (Digest::from_sha256(self.hasher.finalize().into()), self.size, self.inner)
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
