//! The mutation loop: seeded, deterministic, no coverage feedback (stable Rust has no
//! instrumentation for it), so the mutations lean on what breaks parsers: bytes flipped,
//! ranges deleted, duplicated or spliced in from other inputs, the target's tokens inserted,
//! truncations and numbers at their limits.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Target;

/// xorshift64*: small, fast and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift never leaves it).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// How long one target runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop after this many executions (the corpus itself always runs).
    pub executions: u64,
    /// Stop after this long.
    pub time: Duration,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Executions, the corpus included.
    pub executions: u64,
    /// Inputs that panicked, as written to the crash directory.
    pub crashes: Vec<PathBuf>,
}

/// Bytes numbers and separators that often matter whatever the format.
const GENERIC: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\0",
    b" ",
    b"\t",
    b"\"",
    b"'",
    b"\\",
    b"(",
    b")",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b";",
    b"=",
    b"#",
    b"-",
    b".",
    b"/",
    b"%",
    b"0",
    b"-1",
    b"4294967295",
    b"18446744073709551615",
    b"18446744073709551616",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\x8b",
];

/// The largest input the mutations make.
const MAX_LEN: usize = 64 * 1024;

/// Runs `target` over the seeds in `corpus` (files, sorted by name), then mutations of them
/// until `budget` is spent; panics are written to `crash_dir`. Runs on a thread with a
/// 2 MiB stack, as the threads that parse in real runs have.
pub fn fuzz(target: &'static Target, corpus: &Path, crash_dir: &Path, budget: Budget, seed: u64) -> Report {
    let (corpus, crash_dir) = (corpus.to_path_buf(), crash_dir.to_path_buf());
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .stack_size(2 * 1024 * 1024)
        .spawn(move || run(target, &corpus, &crash_dir, budget, seed))
        .expect("spawn the fuzz thread")
        .join()
        .expect("the fuzz loop itself does not panic")
}

fn run(target: &Target, corpus: &Path, crash_dir: &Path, budget: Budget, seed: u64) -> Report {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    if let Ok(dir) = std::fs::read_dir(corpus) {
        let mut paths: Vec<PathBuf> =
            dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        paths.sort();
        seeds.extend(paths.iter().filter_map(|p| std::fs::read(p).ok()));
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    let save_last = std::env::var_os("FUZZ_SAVE_LAST").is_some();
    let mut report = Report::default();
    let exec = |input: &[u8], report: &mut Report| {
        if save_last {
            let _ = std::fs::create_dir_all(crash_dir);
            let _ = std::fs::write(crash_dir.join(format!("{}.last", target.name)), input);
        }
        report.executions += 1;
        if catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_err() {
            let _ = std::fs::create_dir_all(crash_dir);
            let path = crash_dir.join(format!("{}-{:016x}", target.name, fnv(input)));
            let _ = std::fs::write(&path, input);
            report.crashes.push(path);
        }
    };
    for input in &seeds {
        exec(input, &mut report);
    }
    let mut rng = Rng::new(seed ^ fnv(target.name.as_bytes()));
    // Inputs worth mutating further: the seeds, and now and then a mutant (no coverage
    // signal, so a random few, to drift away from the seeds).
    let mut pool = seeds.clone();
    let started = Instant::now();
    while report.executions < budget.executions && report.crashes.len() < 5 {
        if report.executions % 64 == 0 && started.elapsed() >= budget.time {
            break;
        }
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut input, &pool, target.tokens, &mut rng);
        }
        exec(&input, &mut report);
        if rng.below(16) == 0 {
            if pool.len() < 256 {
                pool.push(input);
            } else {
                let slot = seeds.len() + rng.below(pool.len() - seeds.len());
                pool[slot] = input;
            }
        }
    }
    report
}

/// One random change to `input`.
pub fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], tokens: &[&[u8]], rng: &mut Rng) {
    let len = input.len();
    match rng.below(10) {
        // Flip a bit.
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        // Set a byte to anything.
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = rng.next_u64() as u8;
        }
        // Delete a range.
        2 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            input.drain(at..at + n);
        }
        // Duplicate a range in place (grows nesting and repetition).
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let piece = input[at..at + n].to_vec();
            for _ in 0..1 + rng.below(8) {
                insert(input, at, &piece);
            }
        }
        // Splice in a range of another input.
        4 => {
            let other = &pool[rng.below(pool.len())];
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(512));
                let piece = other[from..from + n].to_vec();
                insert(input, rng.below(len + 1), &piece);
            }
        }
        // Truncate.
        5 if len > 0 => input.truncate(rng.below(len)),
        // A token of the format, or a generic one.
        6 | 7 if !tokens.is_empty() => {
            let token = tokens[rng.below(tokens.len())];
            insert(input, rng.below(len + 1), token);
        }
        // Replace a run of digits with a number at a limit.
        8 => {
            let token = GENERIC[rng.below(GENERIC.len())];
            match input.iter().position(|b| b.is_ascii_digit()) {
                Some(at) if rng.below(2) == 0 => {
                    let end = input[at..].iter().position(|b| !b.is_ascii_digit()).map_or(len, |n| at + n);
                    input.splice(at..end, token.iter().copied());
                }
                _ => insert(input, rng.below(len + 1), token),
            }
        }
        _ => {
            let token = GENERIC[rng.below(GENERIC.len())];
            insert(input, rng.below(len + 1), token);
        }
    }
    input.truncate(MAX_LEN);
}

fn insert(input: &mut Vec<u8>, at: usize, piece: &[u8]) {
    if input.len() + piece.len() <= MAX_LEN {
        input.splice(at..at, piece.iter().copied());
    }
}

/// FNV-1a, to name crash files by content.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let pool = vec![b"requests>=2.0; python_version < \"3.10\"".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut input = pool[0].clone();
            (0..100)
                .map(|_| {
                    mutate(&mut input, &pool, &[b"(", b"and"], &mut rng);
                    input.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|i| i.len() <= MAX_LEN));
    }
}
