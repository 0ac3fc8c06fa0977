//! Layers are byte-for-byte reproducible and read as expected by GNU tar, gzip, zstd and
//! sha256sum, whatever the number of compression threads.

use std::io::Read;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Command;

use image::{Compression, LayerError, LayerInfo, LayerOptions, LayerWriter, BLOCK_SIZE};
use sha2::{Digest, Sha256};

/// One entry to add, so that the same set can be added in different orders.
#[derive(Clone)]
enum Entry {
    Dir(&'static str, u32),
    File(String, u32, Vec<u8>),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
}

fn entries() -> Vec<Entry> {
    let long_dir = "d".repeat(120);
    vec![
        Entry::File("usr/bin/tool".into(), 0o775, b"#!/bin/sh\necho hi\n".to_vec()),
        Entry::File("/usr/share/doc/readme".into(), 0o600, b"read me\n".to_vec()),
        Entry::Dir("usr/share", 0o700),
        Entry::Symlink("usr/bin/alias", "tool"),
        // The link sorts before its target: the content must go with the first path.
        Entry::Hardlink("usr/bin/a-link", "usr/bin/tool"),
        Entry::File(format!("opt/{long_dir}/{}", "f".repeat(200)), 0o644, vec![7; 70_000]),
        Entry::File("usr/bin/setuid".into(), 0o4755, b"x".to_vec()),
        Entry::File("etc/empty".into(), 0o644, Vec::new()),
    ]
}

fn build(dir: &Path, name: &str, entries: &[Entry], options: LayerOptions) -> LayerInfo {
    build_with(dir, name, entries, options, Compression::Gzip, image::default_threads())
}

fn build_with(
    dir: &Path,
    name: &str,
    entries: &[Entry],
    options: LayerOptions,
    compression: Compression,
    threads: NonZeroUsize,
) -> LayerInfo {
    let mut layer =
        LayerWriter::new(dir, options).unwrap().with_compression(compression).with_threads(threads);
    for entry in entries {
        match entry {
            Entry::Dir(path, mode) => layer.add_dir(path, *mode).unwrap(),
            Entry::File(path, mode, content) => {
                assert_eq!(
                    layer.add_file(path, *mode, &mut content.as_slice()).unwrap(),
                    content.len() as u64
                );
            }
            Entry::Symlink(path, target) => layer.add_symlink(path, target).unwrap(),
            Entry::Hardlink(path, target) => layer.add_hardlink(path, target).unwrap(),
        }
    }
    layer.finish_to_file(&dir.join(name)).unwrap()
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    // GNU tar warns on stderr about headers it does not understand: there must be none.
    assert!(output.status.success() && output.stderr.is_empty(), "{command:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn sh(script: &str) -> String {
    run(Command::new("sh").arg("-c").arg(script))
}

#[test]
fn insertion_order_does_not_change_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let forward = build(dir.path(), "a.tar.gz", &entries(), LayerOptions::default());
    let mut reversed = entries();
    reversed.reverse();
    let backward = build(dir.path(), "b.tar.gz", &reversed, LayerOptions::default());
    assert_eq!(forward, backward);
    let a = std::fs::read(dir.path().join("a.tar.gz")).unwrap();
    assert_eq!(a, std::fs::read(dir.path().join("b.tar.gz")).unwrap());
    // gzip header: no FNAME flag, mtime 0, OS "unknown".
    assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
}

#[test]
fn digests_and_sizes_match_sha256sum_and_gunzip() {
    let dir = tempfile::tempdir().unwrap();
    let info = build(dir.path(), "layer.tar.gz", &entries(), LayerOptions::default());
    let file = dir.path().join("layer.tar.gz");
    let digest = sh(&format!("sha256sum {}", file.display()));
    assert_eq!(info.digest, format!("sha256:{}", &digest[..64]));
    let diff_id = sh(&format!("gunzip -c {} | sha256sum", file.display()));
    assert_eq!(info.diff_id, format!("sha256:{}", &diff_id[..64]));
    assert_eq!(info.size, std::fs::metadata(&file).unwrap().len());
    let uncompressed = sh(&format!("gunzip -c {} | wc -c", file.display()));
    assert_eq!(info.uncompressed_size, uncompressed.trim().parse::<u64>().unwrap());
}

#[test]
fn tar_lists_sorted_entries_with_fixed_owners_modes_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), "layer.tar.gz", &entries(), LayerOptions::default());
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "--utc", "-tvzf"])
        .arg(dir.path().join("layer.tar.gz"))
        .env("TZ", "UTC"));
    let lines: Vec<&str> = listing.lines().collect();
    for line in &lines {
        assert!(line.contains(" 0/0 "), "{line}");
        assert!(line.contains("1970-01-01 00:00"), "{line}");
    }
    let names: Vec<&str> = lines.iter().map(|line| line.split_whitespace().nth(5).unwrap()).collect();
    let long_dir = format!("opt/{}/", "d".repeat(120));
    let long_file = format!("opt/{}/{}", "d".repeat(120), "f".repeat(200));
    assert_eq!(
        names,
        [
            "etc/",
            "etc/empty",
            "opt/",
            long_dir.as_str(),
            long_file.as_str(),
            "usr/",
            "usr/bin/",
            "usr/bin/a-link",
            "usr/bin/alias",
            "usr/bin/setuid",
            "usr/bin/tool",
            "usr/share/",
            "usr/share/doc/",
            "usr/share/doc/readme",
        ]
    );
    let modes: Vec<&str> = lines.iter().map(|line| line.split_whitespace().next().unwrap()).collect();
    assert_eq!(modes[0], "drwxr-xr-x");
    assert_eq!(modes[1], "-rw-r--r--");
    assert_eq!(modes[7], "-rwxr-xr-x", "the first hard-linked path carries the content");
    assert!(
        lines[10].starts_with("hrwxr-xr-x") && lines[10].ends_with("link to usr/bin/a-link"),
        "{}",
        lines[10]
    );
    assert!(lines[8].starts_with("lrwxrwxrwx") && lines[8].ends_with("-> tool"));
    assert_eq!(modes[9], "-rwxr-xr-x", "setuid dropped unless asked");
    assert_eq!(modes[11], "drwxr-xr-x", "directory modes normalised");
    assert_eq!(modes[13], "-rw-r--r--");

    // Extracted by GNU tar: long names (PAX) and the hard link come back intact.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("tar").arg("-xzf").arg(dir.path().join("layer.tar.gz")).arg("-C").arg(&out));
    assert_eq!(std::fs::read(out.join(long_file)).unwrap(), vec![7; 70_000]);
    assert_eq!(std::fs::read(out.join("usr/bin/tool")).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(std::fs::read(out.join("usr/bin/a-link")).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(std::fs::read_link(out.join("usr/bin/alias")).unwrap(), Path::new("tool"));
}

#[test]
fn mtime_and_special_bits_are_options() {
    let dir = tempfile::tempdir().unwrap();
    let options = LayerOptions { mtime: 1_700_000_000, keep_special_bits: true };
    let info = build(dir.path(), "layer.tar.gz", &entries(), options);
    assert_ne!(info, build(dir.path(), "default.tar.gz", &entries(), LayerOptions::default()));
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "--utc", "-tvzf"])
        .arg(dir.path().join("layer.tar.gz"))
        .env("TZ", "UTC"));
    assert!(listing.lines().all(|line| line.contains("2023-11-14 22:13")), "{listing}");
    assert!(listing.contains("-rwsr-xr-x 0/0"), "{listing}");
}

#[test]
fn owners_are_numeric_and_hard_links_share_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = LayerOptions { mtime: 0, keep_special_bits: true };
    let mut layer = LayerWriter::new(dir.path(), options).unwrap();
    layer.add_dir("var/lib/redis", 0o750).unwrap();
    layer.set_owner("/var/lib/redis", 100, 101).unwrap();
    layer.add_file("usr/bin/chage", 0o2755, &mut &b"x"[..]).unwrap();
    layer.set_owner("usr/bin/chage", 0, 42).unwrap();
    layer.add_hardlink("usr/bin/a-chage", "usr/bin/chage").unwrap();
    layer.add_symlink("usr/bin/expiry", "chage").unwrap();
    layer.set_owner("usr/bin/expiry", 0, 42).unwrap();
    layer.add_file("big-ids", 0o644, &mut &b""[..]).unwrap();
    layer.set_owner("big-ids", 4_000_000_000, 65534).unwrap();
    assert!(matches!(layer.set_owner("usr/bin/a-chage", 1, 1), Err(LayerError::NoOwnerEntry { .. })));
    assert!(matches!(layer.set_owner("nowhere", 1, 1), Err(LayerError::NoOwnerEntry { .. })));
    let path = dir.path().join("layer.tar.gz");
    layer.finish_to_file(&path).unwrap();

    let numeric = run(Command::new("tar").args(["--numeric-owner", "-tvzf"]).arg(&path));
    let fields = |listing: &str| -> Vec<(String, String, String)> {
        listing
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f[0].to_string(), f[1].to_string(), f[5].to_string())
            })
            .collect()
    };
    let want = [
        ("-rw-r--r--", "4000000000/65534", "big-ids"),
        ("drwxr-xr-x", "0/0", "usr/"),
        ("drwxr-xr-x", "0/0", "usr/bin/"),
        // The first path of the hard-linked pair carries the content and the file's owner.
        ("-rwxr-sr-x", "0/42", "usr/bin/a-chage"),
        ("hrwxr-sr-x", "0/42", "usr/bin/chage"),
        ("lrwxrwxrwx", "0/42", "usr/bin/expiry"),
        ("drwxr-xr-x", "0/0", "var/"),
        ("drwxr-xr-x", "0/0", "var/lib/"),
        ("drwxr-x---", "100/101", "var/lib/redis/"),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(m, o, p)| (m.to_string(), o.to_string(), p.to_string())).collect();
    assert_eq!(fields(&numeric), want, "{numeric}");
    // No names in the headers: GNU tar, which prefers names, shows the same ids.
    let named = run(Command::new("tar").arg("-tvzf").arg(&path));
    assert_eq!(fields(&named), want, "{named}");
}

#[test]
fn bad_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
    layer.add_file("a/file", 0o644, &mut &b"x"[..]).unwrap();
    assert!(matches!(layer.add_file("../x", 0o644, &mut &b""[..]), Err(LayerError::InvalidPath { .. })));
    assert!(matches!(layer.add_file("/a/file", 0o644, &mut &b""[..]), Err(LayerError::Duplicate { .. })));
    assert!(matches!(
        layer.add_file("a/file/below", 0o644, &mut &b""[..]),
        Err(LayerError::ParentNotDir { .. })
    ));
    layer.add_symlink("link", "/etc").unwrap();
    assert!(matches!(
        layer.add_file("link/passwd", 0o644, &mut &b""[..]),
        Err(LayerError::ParentNotDir { .. })
    ));
    assert!(matches!(layer.add_dir("a/file", 0o755), Err(LayerError::Duplicate { .. })));
    layer.add_dir("a", 0o755).unwrap();
    layer.add_hardlink("dangling", "nowhere").unwrap();
    let err = layer.finish_to_file(&dir.path().join("layer.tar.gz")).unwrap_err();
    assert!(matches!(err, LayerError::BadHardlink { .. }), "{err}");
    assert!(!dir.path().join("layer.tar.gz").exists());
}

/// Compressible but not trivial bytes, produced on the fly.
struct Pattern {
    remaining: u64,
    state: u64,
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.remaining as usize);
        for byte in &mut buf[..n] {
            self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *byte = b'a' + (self.state >> 60) as u8;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Entries whose tar stream spans several compression blocks: `blocks` files of 1.5 blocks
/// of pseudo-random letters each, and the small entries of [`entries`].
fn big_entries(blocks: usize) -> Vec<Entry> {
    let mut entries = entries();
    for i in 0..blocks {
        let mut content = Vec::new();
        let mut pattern = Pattern { remaining: (BLOCK_SIZE + BLOCK_SIZE / 2) as u64, state: i as u64 };
        pattern.read_to_end(&mut content).unwrap();
        entries.push(Entry::File(format!("data/{i}"), 0o644, content));
    }
    entries
}

fn threads(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks the digests and sizes of `info` against the file and its decompressed bytes.
fn check_info(info: &LayerInfo, file: &[u8], tar: &[u8]) {
    assert_eq!(info.digest, sha256(file));
    assert_eq!(info.size, file.len() as u64);
    assert_eq!(info.diff_id, sha256(tar));
    assert_eq!(info.uncompressed_size, tar.len() as u64);
}

#[test]
fn gzip_is_the_same_on_one_thread_or_many_and_decodes_to_the_tar() {
    let dir = tempfile::tempdir().unwrap();
    let entries = big_entries(4);
    let one =
        build_with(dir.path(), "1.tar.gz", &entries, LayerOptions::default(), Compression::Gzip, threads(1));
    assert!(one.uncompressed_size > 5 * BLOCK_SIZE as u64, "{one:?}");
    assert_eq!(one.media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
    let bytes = std::fs::read(dir.path().join("1.tar.gz")).unwrap();
    for n in [2, 3, 8] {
        let name = format!("{n}.tar.gz");
        let info =
            build_with(dir.path(), &name, &entries, LayerOptions::default(), Compression::Gzip, threads(n));
        assert_eq!(info, one, "{n} threads");
        assert!(std::fs::read(dir.path().join(&name)).unwrap() == bytes, "{n} threads: other bytes");
    }

    // One gzip member that gzip, GzDecoder and MultiGzDecoder all read back to the tar.
    let path = dir.path().join("1.tar.gz");
    sh(&format!("gzip -t {}", path.display()));
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice()).read_to_end(&mut tar).unwrap();
    let mut multi = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice()).read_to_end(&mut multi).unwrap();
    assert!(multi == tar);
    let gunzip = Command::new("gunzip").arg("-c").arg(&path).output().unwrap();
    assert!(gunzip.status.success() && gunzip.stdout == tar);
    check_info(&one, &bytes, &tar);
    let listing = run(Command::new("tar").arg("-tzf").arg(&path));
    assert!(listing.lines().any(|line| line == "data/3"), "{listing}");
    assert!(listing.lines().any(|line| line == "usr/bin/tool"), "{listing}");
}

#[test]
fn a_stream_of_exactly_two_blocks_ends_in_its_second_block() {
    let dir = tempfile::tempdir().unwrap();
    // A 512-byte header, the content, 1024 bytes of end of archive: two blocks exactly.
    let entries = [Entry::File("f".into(), 0o644, vec![b'x'; 2 * BLOCK_SIZE - 1536])];
    for compression in [Compression::Gzip, Compression::Zstd] {
        let name = format!("layer.{}", compression.extension());
        let info = build_with(dir.path(), &name, &entries, LayerOptions::default(), compression, threads(2));
        assert_eq!(info.uncompressed_size, 2 * BLOCK_SIZE as u64);
        let file = std::fs::read(dir.path().join(&name)).unwrap();
        let tar = decompress(compression, &file);
        check_info(&info, &file, &tar);
    }
}

#[test]
fn an_empty_layer_is_an_empty_tar() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let name = format!("empty.{}", compression.extension());
        let info = build_with(dir.path(), &name, &[], LayerOptions::default(), compression, threads(4));
        let file = std::fs::read(dir.path().join(&name)).unwrap();
        let tar = decompress(compression, &file);
        assert_eq!(tar, vec![0; 1024], "an empty tar archive is its end-of-archive blocks");
        check_info(&info, &file, &tar);
        let tool = match compression {
            Compression::Gzip => "tar -tzf",
            Compression::Zstd => "tar --zstd -tf",
        };
        assert_eq!(sh(&format!("{tool} {}", dir.path().join(&name).display())), "");
    }
}

/// Decompresses a whole layer in this process (gzip with one member, zstd with any frames).
fn decompress(compression: Compression, file: &[u8]) -> Vec<u8> {
    match compression {
        Compression::Gzip => {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(file).read_to_end(&mut tar).unwrap();
            tar
        }
        Compression::Zstd => zstd::decode_all(file).unwrap(),
    }
}

#[test]
fn zstd_is_the_same_on_one_thread_or_many_and_decodes_with_the_zstd_cli() {
    let dir = tempfile::tempdir().unwrap();
    let entries = big_entries(3);
    let one =
        build_with(dir.path(), "1.tar.zst", &entries, LayerOptions::default(), Compression::Zstd, threads(1));
    assert_eq!(one.media_type(), "application/vnd.oci.image.layer.v1.tar+zstd");
    let bytes = std::fs::read(dir.path().join("1.tar.zst")).unwrap();
    let many =
        build_with(dir.path(), "4.tar.zst", &entries, LayerOptions::default(), Compression::Zstd, threads(4));
    assert_eq!(many, one);
    assert!(std::fs::read(dir.path().join("4.tar.zst")).unwrap() == bytes);

    let tar = decompress(Compression::Zstd, &bytes);
    check_info(&one, &bytes, &tar);
    // The same tar as the gzip layer of the same entries.
    let gzip = build(dir.path(), "layer.tar.gz", &entries, LayerOptions::default());
    assert_eq!(gzip.diff_id, one.diff_id);

    let path = dir.path().join("1.tar.zst");
    let cli = Command::new("zstd").arg("-dc").arg(&path).output();
    match cli {
        Ok(output) => {
            assert!(output.status.success() && output.stdout == tar, "zstd -d: {:?}", output.status);
            let listing = run(Command::new("tar").arg("--zstd").arg("-tf").arg(&path));
            assert!(listing.lines().any(|line| line == "data/2"), "{listing}");
            assert!(listing.lines().any(|line| line == "usr/bin/a-link"), "{listing}");
        }
        Err(err) => eprintln!("zstd CLI not run ({err}): decoded in process only"),
    }
}

#[test]
fn media_types_are_the_oci_ones() {
    assert_eq!(Compression::Gzip.media_type(), oci::media_type::OCI_LAYER_TAR_GZIP);
    assert_eq!(Compression::Zstd.media_type(), oci::media_type::OCI_LAYER_TAR_ZSTD);
    assert_eq!(Compression::default(), Compression::Gzip);
}

/// The bytes of a layer depend on the compressor's code, level and block size. These pinned
/// digests catch a change of any of them (a flate2 backend switched by feature unification,
/// a zlib-rs or libzstd update that compresses differently): every layer digest would change
/// with it, so such an update must be deliberate, and bump [`Compression::identity`] too.
#[test]
fn golden_digests() {
    assert_eq!(Compression::Gzip.identity(), "gzip zlib-rs-0.6 level-6 blocks-1MiB");
    assert_eq!(Compression::Zstd.identity(), "zstd libzstd-1.5.7 level-3 blocks-1MiB checksum");
    let dir = tempfile::tempdir().unwrap();
    let entries = big_entries(2);
    let gzip = build(dir.path(), "layer.tar.gz", &entries, LayerOptions::default());
    let zstd = build_with(
        dir.path(),
        "layer.tar.zst",
        &entries,
        LayerOptions::default(),
        Compression::Zstd,
        threads(2),
    );
    assert_eq!(gzip.diff_id, zstd.diff_id);
    assert_eq!(
        [gzip.diff_id.as_str(), gzip.digest.as_str(), zstd.digest.as_str()],
        [
            "sha256:b2a24609d64dcd3576c1d18ff759bb992ac5fbf26da347249f90e19cfe54520e",
            "sha256:18b1af9b6ab6f49c7f23ef6b4ecbdc9a9aa820b415e28f6280e4d8816b8b694b",
            "sha256:bf155066aafd7ff3ccea323b0efedeecf9d8a271dcea9607c0542b84db1812eb",
        ]
    );
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A layer far bigger than any buffer streams through files (run with `--ignored --release`).
#[test]
#[ignore = "writes 1 GiB; run by hand to check memory and speed"]
fn a_big_layer_is_streamed_not_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let mut layer = LayerWriter::new(dir.path(), LayerOptions::default()).unwrap();
    let size = 1 << 30;
    layer.add_file("big", 0o644, &mut Pattern { remaining: size, state: 1 }).unwrap();
    let info = layer.finish_to_file(&dir.path().join("big.tar.gz")).unwrap();
    assert!(info.uncompressed_size > size);
    let peak = peak_rss_kib();
    eprintln!("1 GiB layer in {:?}, peak RSS {peak} KiB, {info:?}", start.elapsed());
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}
