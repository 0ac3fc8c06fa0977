//! Block-parallel, deterministic compression of a layer's tar stream.
//!
//! The stream is cut into blocks of [`BLOCK_SIZE`] bytes, a size that does not depend on the
//! machine or the number of threads. Each block is compressed on its own by a pool of worker
//! threads and the results are written in order:
//!
//! - gzip: each block is raw deflate ending with a sync flush (so blocks concatenate into one
//!   deflate stream), the last one finished; one gzip header and trailer (CRC32 and length of
//!   the whole stream) around them, as `pigz` writes (without its dictionary carried over
//!   between blocks, which gains about 0.2% here and would tie each block to the previous one).
//! - zstd: each block is one complete zstd frame; a sequence of frames is a valid zstd stream.
//!
//! So the output depends only on the input bytes, the format, its level, [`BLOCK_SIZE`] and
//! the compressor's code, never on how many threads ran or on which machine.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::Scope;

use flate2::{Compress, FlushCompress, Status};
use oci::media_type;

/// The deflate level of gzip layers, with the zlib-rs backend of flate2.
///
/// Part of every gzip layer's identity, with [`BLOCK_SIZE`] and the backend (zlib-rs; its
/// version is pinned by `Cargo.lock`): changing any of them changes the bytes, so the digest,
/// of every gzip layer. The golden digests in `tests/layer.rs` catch such a change.
pub const GZIP_LEVEL: u32 = 6;

/// The zstd level of zstd layers (zstd's own default), with the `zstd` crate's bundled libzstd.
///
/// Part of every zstd layer's identity, as [`GZIP_LEVEL`] is for gzip layers.
pub const ZSTD_LEVEL: i32 = 3;

/// The size of the uncompressed blocks that are compressed independently (1 MiB).
///
/// Part of every layer's identity: changing it changes every layer digest.
pub const BLOCK_SIZE: usize = 1 << 20;

/// The most worker threads one layer uses, whatever the machine has.
const MAX_THREADS: usize = 16;

/// The gzip header of every layer: deflate, no flags (no name, no comment), mtime 0, no extra
/// flags, OS 255 ("unknown"), so that it says nothing about the machine that wrote it.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip ([`GZIP_LEVEL`]): what every registry and runtime reads.
    #[default]
    Gzip,
    /// zstd ([`ZSTD_LEVEL`]): smaller and much faster to compress and decompress; needs
    /// containerd 1.5+ or Docker 23+ to pull.
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media_type::OCI_LAYER_TAR_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_TAR_ZSTD,
        }
    }

    /// What decides the compressed bytes of a given tar stream: format, compressor, level and
    /// block size. It changes whenever they would (the golden digests of `tests/layer.rs`
    /// fail until it is bumped with them), so a cache of compressed layers should key on it.
    pub fn identity(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip zlib-rs-0.6 level-6 blocks-1MiB",
            Compression::Zstd => "zstd libzstd-1.5.7 level-3 blocks-1MiB checksum",
        }
    }

    /// The usual file name extension of a layer compressed this way (`tar.gz`, `tar.zst`).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "tar.gz",
            Compression::Zstd => "tar.zst",
        }
    }
}

/// The default number of compression threads: the available parallelism, at most 16.
pub fn default_threads() -> NonZeroUsize {
    let available = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(available.clamp(1, MAX_THREADS)).unwrap_or(NonZeroUsize::MIN)
}

/// One block to compress: its position in the stream, its bytes, and whether it ends it.
struct Job {
    index: u64,
    data: Vec<u8>,
    last: bool,
}

/// A compressed block, or why it could not be.
type Done = (u64, io::Result<Vec<u8>>);

/// A writer that compresses what it is given into `out`, block by block, on worker threads
/// spawned (as needed, up to `threads`) in a thread scope; [`Encoder::finish`] ends the stream.
///
/// At most two blocks per thread are in flight, so memory stays a few MiB per thread
/// whatever the size of the stream.
pub(crate) struct Encoder<'scope, 'env, W: Write> {
    scope: &'scope Scope<'scope, 'env>,
    compression: Compression,
    threads: usize,
    spawned: usize,
    out: W,
    /// The block being filled; sent once full and more data comes, or at the end.
    block: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    /// `None` once the stream is finished, which lets the workers stop.
    jobs: Option<Sender<Job>>,
    job_queue: Arc<Mutex<Receiver<Job>>>,
    done_tx: Sender<Done>,
    done: Receiver<Done>,
    /// Compressed blocks that arrived before an earlier one.
    pending: BTreeMap<u64, Vec<u8>>,
    /// The index of the next block to send, and of the next block to write.
    sent: u64,
    written: u64,
}

impl<'scope, 'env, W: Write> Encoder<'scope, 'env, W> {
    /// Starts a compressed stream into `out` (writing the gzip header at once).
    pub(crate) fn new(
        scope: &'scope Scope<'scope, 'env>,
        compression: Compression,
        threads: NonZeroUsize,
        mut out: W,
    ) -> io::Result<Self> {
        if compression == Compression::Gzip {
            out.write_all(&GZIP_HEADER)?;
        }
        let (jobs, job_queue) = channel();
        let (done_tx, done) = channel();
        Ok(Encoder {
            scope,
            compression,
            threads: threads.get(),
            spawned: 0,
            out,
            block: Vec::with_capacity(BLOCK_SIZE),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            jobs: Some(jobs),
            job_queue: Arc::new(Mutex::new(job_queue)),
            done_tx,
            done,
            pending: BTreeMap::new(),
            sent: 0,
            written: 0,
        })
    }

    /// Compresses the last block, writes everything still in flight and the gzip trailer,
    /// and returns the output writer (not flushed).
    pub(crate) fn finish(mut self) -> io::Result<W> {
        // The last block is empty only when the whole stream is (a full block is sent only
        // once more data comes), so no empty block follows a full one.
        self.send_block(true)?;
        self.jobs = None;
        while self.written < self.sent {
            self.receive_one()?;
        }
        if self.compression == Compression::Gzip {
            self.out.write_all(&self.crc.clone().finalize().to_le_bytes())?;
            // ISIZE is the length modulo 2^32, as RFC 1952 says.
            self.out.write_all(&(self.total_in as u32).to_le_bytes())?;
        }
        Ok(self.out)
    }

    /// Hands the current block to a worker, waiting first while too many are in flight.
    fn send_block(&mut self, last: bool) -> io::Result<()> {
        while self.sent - self.written >= 2 * self.threads as u64 {
            self.receive_one()?;
        }
        let capacity = if last { 0 } else { BLOCK_SIZE };
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(capacity));
        if self.spawned < self.threads && (self.sent - self.written) as usize >= self.spawned {
            self.spawn_worker();
        }
        let stopped = || io::Error::other("the compression threads stopped");
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Job { index: self.sent, data, last }).map_err(|_| stopped())?;
        self.sent += 1;
        // Write what is ready without waiting.
        while let Ok(done) = self.done.try_recv() {
            self.accept(done)?;
        }
        Ok(())
    }

    fn spawn_worker(&mut self) {
        let queue = Arc::clone(&self.job_queue);
        let done = self.done_tx.clone();
        let compression = self.compression;
        self.scope.spawn(move || {
            let mut zstd = None;
            loop {
                // The lock is held only to take a job; a panic cannot happen while it is held.
                let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok(job) = job else { return };
                let result = catch_unwind(AssertUnwindSafe(|| {
                    compress_block(compression, &job.data, job.last, &mut zstd)
                }))
                .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")));
                if done.send((job.index, result)).is_err() {
                    return;
                }
            }
        });
        self.spawned += 1;
    }

    /// Waits for one compressed block.
    fn receive_one(&mut self) -> io::Result<()> {
        // `self.done_tx` keeps the channel open, so this cannot fail while blocks are in flight.
        let done = self.done.recv().map_err(|_| io::Error::other("the compression threads stopped"))?;
        self.accept(done)
    }

    /// Takes a compressed block and writes every block that is now next in order.
    fn accept(&mut self, (index, result): Done) -> io::Result<()> {
        self.pending.insert(index, result?);
        while let Some(block) = self.pending.remove(&self.written) {
            self.out.write_all(&block)?;
            self.written += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for Encoder<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.block.len() == BLOCK_SIZE {
            self.send_block(false)?;
        }
        let take = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..take]);
        self.crc.update(&buf[..take]);
        self.total_in += take as u64;
        Ok(take)
    }

    /// Flushes the output writer only: a block is compressed once full or at the end, since
    /// compressing a partial block would change the output.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Compresses one block; `zstd` keeps a worker's zstd context from one block to the next.
fn compress_block(
    compression: Compression,
    data: &[u8],
    last: bool,
    zstd: &mut Option<zstd::bulk::Compressor<'static>>,
) -> io::Result<Vec<u8>> {
    match compression {
        Compression::Gzip => deflate_block(data, last),
        Compression::Zstd => {
            let compressor = match zstd {
                Some(compressor) => compressor,
                None => {
                    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                    compressor.include_checksum(true)?;
                    zstd.insert(compressor)
                }
            };
            compressor.compress(data)
        }
    }
}

/// Raw deflate of one block with a fresh compressor: ends with a sync flush (an empty stored
/// block, so the next block starts on a byte boundary) unless `last`, which finishes the stream.
fn deflate_block(data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    // Enough for incompressible data in one call (stored blocks cost 5 bytes per 64 KiB).
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress.compress_vec(&data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        // A flush is complete once it leaves room in the output; a finish says so.
        match status {
            Status::StreamEnd => return Ok(out),
            _ if !last && all_in && out.len() < out.capacity() => return Ok(out),
            _ => out.reserve(out.capacity().max(1 << 16)),
        }
    }
}

/// The compression a layer media type names, if it is one this crate writes.
pub fn compression_of(media_type: &str) -> Option<Compression> {
    match media_type {
        media_type::OCI_LAYER_TAR_GZIP | media_type::DOCKER_LAYER_TAR_GZIP => Some(Compression::Gzip),
        media_type::OCI_LAYER_TAR_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The sha256 and the size of the tar stream inside the compressed layer `path`: its
/// `diff_id`, as an image configuration names it. Reads the whole layer, but no more of
/// the tar than the `claimed` size: past it, the error is a [`bounded::TooLarge`] naming
/// `what`, so a small stream that would expand to terabytes costs what the claim costs.
pub fn uncompressed_digest(
    path: &std::path::Path,
    compression: Compression,
    claimed: u64,
    what: &str,
) -> io::Result<([u8; 32], u64)> {
    use sha2::Digest as _;
    struct Hashing(sha2::Sha256, u64);
    impl Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            self.1 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut out = Hashing(sha2::Sha256::new(), 0);
    io::copy(&mut bounded::Reader::claimed(decoder(path, compression)?, claimed, what), &mut out)?;
    Ok((out.0.finalize().into(), out.1))
}

/// The tar stream of the compressed layer `path`.
fn decoder(path: &std::path::Path, compression: Compression) -> io::Result<Box<dyn io::Read>> {
    let file = io::BufReader::new(std::fs::File::open(path)?);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

/// The content of the regular file `member` (relative: `usr/share/x.json`) of the
/// compressed layer `path`, if it holds one of at most `max` bytes; reading stops at it,
/// and at [`bounded::ceiling_for`] the layer's size (nothing claims the tar's size here).
pub fn read_layer_member(
    path: &std::path::Path,
    compression: Compression,
    member: &str,
    max: u64,
) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let ceiling = bounded::ceiling_for(std::fs::metadata(path)?.len());
    let stream = bounded::Reader::ceiling(decoder(path, compression)?, ceiling, path.display().to_string());
    let member = member.trim_start_matches('/');
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let entry = entry?;
        let is_it = entry.header().entry_type().is_file()
            && entry.path().is_ok_and(|p| p.to_string_lossy().trim_start_matches("./") == member);
        if !is_it {
            continue;
        }
        if entry.size() > max {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        entry.take(max).read_to_end(&mut bytes)?;
        return Ok(Some(bytes));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Compresses `data` written in pieces of the given sizes (cycled) on `threads` threads.
    fn encode(compression: Compression, data: &[u8], pieces: &[usize], threads: usize) -> Vec<u8> {
        std::thread::scope(|scope| {
            let threads = NonZeroUsize::new(threads).unwrap();
            let mut encoder = Encoder::new(scope, compression, threads, Vec::new()).unwrap();
            let mut rest = data;
            for &piece in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at(piece.min(rest.len()));
                encoder.write_all(head).unwrap();
                rest = tail;
            }
            encoder.finish().unwrap()
        })
    }

    #[test]
    fn bytes_depend_on_the_data_only_not_on_write_sizes_or_threads() {
        let data: Vec<u8> =
            (0..3 * BLOCK_SIZE + 12_345).map(|i| (i * 7 % 251) as u8 ^ (i >> 12) as u8).collect();
        for compression in [Compression::Gzip, Compression::Zstd] {
            let whole = encode(compression, &data, &[data.len()], 1);
            assert_eq!(encode(compression, &data, &[1, 7, 4096, BLOCK_SIZE + 3], 3), whole);
            assert_eq!(encode(compression, &data, &[65_536], 2), whole);
            let decoded = match compression {
                Compression::Gzip => {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(whole.as_slice()).read_to_end(&mut out).unwrap();
                    out
                }
                Compression::Zstd => zstd::decode_all(whole.as_slice()).unwrap(),
            };
            assert!(decoded == data, "{compression:?} does not decode back");
        }
    }

    #[test]
    fn the_gzip_trailer_has_the_crc_and_length_of_the_stream() {
        let data = b"hello, layer\n".repeat(1000);
        let gz = encode(Compression::Gzip, &data, &[100], 2);
        assert_eq!(gz[..10], GZIP_HEADER);
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(&data).to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
    }
}
