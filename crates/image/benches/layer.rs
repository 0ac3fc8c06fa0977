//! Builds one layer from a directory tree and reports how long adding and compressing took.
//!
//! ```text
//! cargo bench -p image --bench layer -- SRC_DIR OUT [--max-mb N] [--threads N] [--zstd]
//! ```
//!
//! Files are added in a sorted walk until `--max-mb` megabytes of content (default: all);
//! symlinks are kept, other special files skipped. `bench/layer.sh` runs it against `pigz`.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{Compression, LayerOptions, LayerWriter};

struct Args {
    src: PathBuf,
    out: PathBuf,
    max_bytes: u64,
    threads: NonZeroUsize,
    compression: Compression,
}

fn parse_args() -> Args {
    // `cargo bench` appends `--bench`; anything else unknown is an error.
    let mut positional = Vec::new();
    let mut max_bytes = u64::MAX;
    let mut threads = image::default_threads();
    let mut compression = Compression::Gzip;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--max-mb" => {
                let mb: u64 = args.next().and_then(|v| v.parse().ok()).expect("--max-mb takes a number");
                max_bytes = mb * 1_000_000;
            }
            "--threads" => {
                threads =
                    args.next().and_then(|v| v.parse().ok()).expect("--threads takes a positive number");
            }
            "--zstd" => compression = Compression::Zstd,
            _ if arg.starts_with("--") => panic!("unknown option {arg}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [src, out] = <[PathBuf; 2]>::try_from(positional).expect("usage: layer SRC_DIR OUT [options]");
    Args { src, out, max_bytes, threads, compression }
}

/// Adds the tree under `dir` (sorted, so runs are comparable) until `budget` bytes of content.
fn add_tree(layer: &mut LayerWriter, root: &Path, dir: &Path, budget: &mut u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if *budget == 0 {
            return;
        }
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            layer.add_symlink(&rel, &target.to_string_lossy()).unwrap();
        } else if meta.is_dir() {
            layer.add_dir(&rel, 0o755).unwrap();
            add_tree(layer, root, &path, budget);
        } else if meta.is_file() {
            let Ok(mut file) = std::fs::File::open(&path) else { continue };
            use std::os::unix::fs::PermissionsExt;
            let len = layer.add_file(&rel, meta.permissions().mode(), &mut file).unwrap();
            *budget = budget.saturating_sub(len);
        }
    }
}

fn main() {
    let args = parse_args();
    let scratch = args.out.parent().unwrap_or(Path::new("."));
    let start = Instant::now();
    let mut layer = LayerWriter::new(scratch, LayerOptions::default())
        .unwrap()
        .with_compression(args.compression)
        .with_threads(args.threads);
    let mut budget = args.max_bytes;
    add_tree(&mut layer, &args.src, &args.src, &mut budget);
    let added = start.elapsed().as_secs_f64();
    let info = layer.finish_to_file(&args.out).unwrap();
    let total = start.elapsed().as_secs_f64();
    let finish = total - added;
    let mb = info.uncompressed_size as f64 / 1e6;
    println!("{:?} on {} threads", args.compression, args.threads);
    println!("tar {mb:.1} MB -> {:.1} MB ({:.3})", info.size as f64 / 1e6, info.size as f64 / 1e6 / mb);
    println!("add {added:.2} s, finish {finish:.2} s ({:.1} MB/s), total {total:.2} s", mb / finish);
    println!("diff_id {}\ndigest {}", info.diff_id, info.digest);
}
