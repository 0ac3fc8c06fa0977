//! Installing a wheel into a layer as pip would, without running Python.

mod bytecode;
mod dir;
mod entry_points;
mod record;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use safe_path::{Absolute, Refusal, Rules, Windows};
use sha2::{Digest, Sha256};

use crate::layer::{LayerError, LayerWriter};
pub use bytecode::{cache_path, Bytecompiler, Compiled, PySource};
pub use dir::DirSink;
use entry_points::parse_script_entry_points;
pub use record::record_hash;
use record::{csv_field, parse_record, urlsafe_b64_nopad, RecordEntry, RecordHasher};

/// What `INSTALLER` says installed the distribution.
pub const INSTALLER: &str = "marqo-base";

/// How far into a script the first line (a shebang) is looked for.
const MAX_SHEBANG_LEN: u64 = 4096;

/// An error while installing a wheel. Each names the wheel and, where there is one, the entry.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The wheel could not be opened or read.
    #[error("failed to read wheel {}", wheel.display())]
    Read {
        /// The wheel file.
        wheel: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The wheel is not a readable zip archive.
    #[error("wheel {} is not a valid zip archive", wheel.display())]
    Zip {
        /// The wheel file.
        wheel: PathBuf,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
    /// No `.dist-info` directory with a `WHEEL` file, or more than one.
    #[error("wheel {} must have exactly one `.dist-info` directory with a WHEEL file; found {found}", wheel.display())]
    DistInfo {
        /// The wheel file.
        wheel: PathBuf,
        /// The directories found (or "none").
        found: String,
    },
    /// A metadata file (`WHEEL`, `RECORD`, `entry_points.txt`) that cannot be used.
    #[error("wheel {}: `{file}` is invalid: {reason}", wheel.display())]
    BadMetadata {
        /// The wheel file.
        wheel: PathBuf,
        /// The metadata file inside the wheel.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry that could write outside its destination, or is not a regular file.
    #[error("wheel {}: refusing entry `{entry}`: {reason}", wheel.display())]
    UnsafeEntry {
        /// The wheel file.
        wheel: PathBuf,
        /// The entry's name in the zip archive.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A file that the wheel's `RECORD` does not list, or lists without a usable hash.
    #[error("wheel {}: `{entry}` cannot be verified: {reason}", wheel.display())]
    Unverified {
        /// The wheel file.
        wheel: PathBuf,
        /// The entry's name in the zip archive.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A file whose content differs from its `RECORD` row.
    #[error("wheel {}: `{entry}` does not match the wheel's RECORD: expected {expected}, found {found}", wheel.display())]
    RecordMismatch {
        /// The wheel file.
        wheel: PathBuf,
        /// The entry's name in the zip archive.
        entry: String,
        /// What `RECORD` says.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The bytecode compiler failed (not a module that does not compile: those are skipped).
    #[error("wheel {}: cannot byte-compile its modules", wheel.display())]
    Bytecode {
        /// The wheel file.
        wheel: PathBuf,
        /// The compiler's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Adding an installed file to the layer failed (a duplicate path, a read error, ...).
    #[error("wheel {}: failed to install `{entry}`", wheel.display())]
    Layer {
        /// The wheel file.
        wheel: PathBuf,
        /// The entry or generated file.
        entry: String,
        /// The underlying error.
        #[source]
        source: LayerError,
    },
}

/// Where an interpreter installs each part of a wheel (absolute paths in the image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Pure-Python modules (`Root-Is-Purelib: true` and `.data/purelib`).
    pub purelib: String,
    /// Platform-specific modules (`Root-Is-Purelib: false` and `.data/platlib`).
    pub platlib: String,
    /// Scripts and console-script launchers.
    pub scripts: String,
    /// `.data/data`, relative to a prefix.
    pub data: String,
    /// The directory that holds one directory of C headers per distribution (named after it).
    pub headers: String,
}

impl Scheme {
    /// The scheme of pip run as root with Debian's `python3` (`python_version` as `3.9`):
    /// `dist-packages` under `/usr/local`, as Debian patches `sysconfig`.
    pub fn debian(python_version: &str) -> Scheme {
        let site = format!("/usr/local/lib/python{python_version}/dist-packages");
        Scheme {
            purelib: site.clone(),
            platlib: site,
            scripts: "/usr/local/bin".to_string(),
            data: "/usr/local".to_string(),
            headers: format!("/usr/local/include/python{python_version}"),
        }
    }

    /// The scheme of a virtual environment (`python_version` as `3.9`), with paths relative
    /// to the environment's directory: what a [`DirSink`] at that directory takes.
    pub fn venv(python_version: &str) -> Scheme {
        let site = format!("/lib/python{python_version}/site-packages");
        Scheme {
            purelib: site.clone(),
            platlib: site,
            scripts: "/bin".to_string(),
            data: String::new(),
            headers: format!("/include/site/python{python_version}"),
        }
    }
}

/// How a wheel is installed, apart from where.
#[derive(Debug, Clone)]
pub struct InstallOptions<'a> {
    /// The target interpreter written into script shebangs, e.g. `/usr/bin/python3.9`.
    pub python: String,
    /// Write `REQUESTED`: the distribution was asked for, not pulled in as a dependency.
    pub requested: bool,
    /// Refuse a file that its `RECORD` row does not match, or does not list. Off, such files
    /// are installed (as pip and uv install them: published wheels with a stale `RECORD`
    /// exist, and the wheel itself is checked by its sha256 before) and reported in
    /// [`InstalledWheel::record_problems`]; the installed `RECORD` has their real hashes.
    pub strict_record: bool,
    /// Byte-compile, as pip does: every `.py` file installed into the purelib or platlib
    /// gets its `__pycache__/NAME.TAG.pyc` from this compiler, listed in `RECORD` with its
    /// hash and size. A module that does not compile is installed without one (see
    /// [`InstalledWheel::not_compiled`]); a `.pyc` the wheel ships at that path is replaced,
    /// as pip overwrites it. `None`: no bytecode (as `pip install --no-compile`).
    pub bytecode: Option<&'a dyn Bytecompiler>,
}

/// What [`install_wheel`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledWheel {
    /// The distribution name as the `.dist-info` directory spells it.
    pub name: String,
    /// The version as the `.dist-info` directory spells it.
    pub version: String,
    /// The absolute path of the installed `.dist-info` directory.
    pub dist_info: String,
    /// Every installed file, absolute, sorted (the generated `RECORD` included).
    pub files: Vec<String>,
    /// Files the wheel's `RECORD` does not match or list (only without
    /// [`InstallOptions::strict_record`]).
    pub record_problems: Vec<String>,
    /// How many modules got a `.pyc` (with [`InstallOptions::bytecode`]).
    pub compiled: usize,
    /// The modules that do not compile, each with why (``/…/py2.py`: SyntaxError: …`).
    pub not_compiled: Vec<String>,
    /// The core metadata (`.dist-info/METADATA`), its first [`MAX_METADATA`] bytes read
    /// lossily as UTF-8; `None` if the wheel has none.
    pub metadata: Option<String>,
}

/// How much of a wheel's `METADATA` [`InstalledWheel::metadata`] holds.
pub const MAX_METADATA: u64 = 1 << 20;

/// One installed file: its path in the image, its sha256 (as RECORD writes it) and size.
struct Installed {
    path: String,
    hash: Option<String>,
    size: Option<u64>,
}

/// Where [`install_wheel`] puts files: a layer being written, or a directory
/// ([`DirSink`], for build environments). Paths are absolute, `/`-separated.
pub trait InstallSink {
    /// Adds the regular file `path` with permission bits `mode` and `content`; returns its
    /// size.
    fn add_file(&mut self, path: &str, mode: u32, content: &mut dyn Read) -> Result<u64, LayerError>;
}

impl InstallSink for LayerWriter {
    fn add_file(&mut self, path: &str, mode: u32, content: &mut dyn Read) -> Result<u64, LayerError> {
        LayerWriter::add_file(self, path, mode, content)
    }
}

/// Installs the wheel at `wheel` into `layer` under `scheme`, as pip would.
///
/// Every file is checked against the wheel's `RECORD` while it is copied; absolute paths,
/// `..`, backslashes, symlinks and files missing from `RECORD` are refused. Scripts in
/// `.data/scripts` get `options.python` in a `#!python` shebang, console and GUI entry points
/// get launchers, and `INSTALLER`, `REQUESTED` (if asked) and a new `RECORD` are written.
/// Modules are byte-compiled when [`InstallOptions::bytecode`] gives a compiler. On an
/// error the layer holds part of the wheel: drop it.
pub fn install_wheel(
    wheel: &Path,
    scheme: &Scheme,
    layer: &mut dyn InstallSink,
    options: &InstallOptions<'_>,
) -> Result<InstalledWheel, WheelError> {
    let file =
        fs_err::File::open(wheel).map_err(|source| WheelError::Read { wheel: wheel.into(), source })?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|source| WheelError::Zip { wheel: wheel.into(), source })?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let dist_info = find_dist_info(wheel, &names)?;
    let stem = dist_info.strip_suffix(".dist-info").unwrap_or(&dist_info);
    let (name, version) = stem.rsplit_once('-').ok_or_else(|| WheelError::DistInfo {
        wheel: wheel.into(),
        found: format!("`{dist_info}` (not NAME-VERSION.dist-info)"),
    })?;
    let data_dir = format!("{stem}.data");
    let metadata = read_metadata(&mut archive, wheel, &format!("{dist_info}/METADATA"))?;

    let wheel_file = read_text(&mut archive, wheel, &format!("{dist_info}/WHEEL"))?
        .ok_or_else(|| WheelError::DistInfo { wheel: wheel.into(), found: "none".into() })?;
    let root_is_purelib = parse_wheel_file(&wheel_file)
        .map_err(|reason| bad_metadata(wheel, &format!("{dist_info}/WHEEL"), reason))?;
    let root = if root_is_purelib { &scheme.purelib } else { &scheme.platlib };
    let record_name = format!("{dist_info}/RECORD");
    let record_text = read_text(&mut archive, wheel, &record_name)?
        .ok_or_else(|| bad_metadata(wheel, &record_name, "missing".into()))?;
    let record: HashMap<String, RecordEntry> = parse_record(&record_text)
        .map_err(|(line, reason)| bad_metadata(wheel, &record_name, format!("line {line}: {reason}")))?
        .into_iter()
        .collect();
    let entry_points_name = format!("{dist_info}/entry_points.txt");
    let scripts = match read_text(&mut archive, wheel, &entry_points_name)? {
        Some(text) => parse_script_entry_points(&text)
            .map_err(|reason| bad_metadata(wheel, &entry_points_name, reason))?,
        None => Vec::new(),
    };

    // Files of the wheel that the installer writes itself.
    let replaced = ["RECORD", "INSTALLER", "REQUESTED"].map(|file| format!("{dist_info}/{file}"));
    let mut installed = Vec::new();
    let mut record_problems = Vec::new();
    // With bytecode: the modules to compile (installed path, source), and the `.pyc` files
    // the wheel ships, held back until it is known whether a compiled one replaces them.
    let pyc_suffix = options.bytecode.map(|compiler| format!(".{}.pyc", compiler.cache_tag()));
    let mut sources: Vec<(String, std::sync::Arc<[u8]>)> = Vec::new();
    let mut shipped_pyc: BTreeMap<String, (u32, Vec<u8>, Installed)> = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry =
            archive.by_index(index).map_err(|source| WheelError::Zip { wheel: wheel.into(), source })?;
        let entry_name = entry.name().to_string();
        let unsafe_entry =
            |reason| WheelError::UnsafeEntry { wheel: wheel.into(), entry: entry_name.clone(), reason };
        let components = member_components(&entry_name).map_err(unsafe_entry)?;
        if entry.unix_mode().is_some_and(|mode| mode & 0o170000 == 0o120000) {
            return Err(unsafe_entry("symbolic links are not allowed in wheels"));
        }
        if entry.is_dir() {
            continue;
        }
        if replaced.contains(&entry_name) {
            continue;
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        let (destination, is_script, in_lib) = if components[0] == data_dir {
            let [_, key, rest @ ..] = components.as_slice() else {
                return Err(unsafe_entry("a file directly in the `.data` directory"));
            };
            if rest.is_empty() {
                return Err(unsafe_entry("a file directly in the `.data` directory"));
            }
            let base = match *key {
                "purelib" => scheme.purelib.clone(),
                "platlib" => scheme.platlib.clone(),
                "scripts" => scheme.scripts.clone(),
                "data" => scheme.data.clone(),
                "headers" => format!("{}/{name}", scheme.headers),
                _ => return Err(unsafe_entry("an unknown `.data` directory")),
            };
            let in_lib = matches!(*key, "purelib" | "platlib");
            (format!("{base}/{}", rest.join("/")), *key == "scripts", in_lib)
        } else {
            (format!("{root}/{}", components.join("/")), false, true)
        };
        // Held in memory rather than streamed: a module to compile (its source goes to the
        // compiler too), or a `.pyc` the wheel ships where a compiled one may go.
        let module = in_lib && pyc_suffix.is_some() && bytecode::is_source(&destination);
        let shipped = in_lib
            && pyc_suffix.as_ref().is_some_and(|suffix| {
                destination.ends_with(suffix.as_str())
                    && destination.rsplit('/').nth(1) == Some("__pycache__")
            });

        let expected = match record.get(&entry_name) {
            Some(RecordEntry { hash: Some(hash), size }) => Some((hash.clone(), *size)),
            // Signatures of RECORD cannot be listed in it.
            None if entry_name == format!("{record_name}.jws")
                || entry_name == format!("{record_name}.p7s") =>
            {
                None
            }
            found => {
                let reason =
                    if found.is_some() { "its RECORD row has no hash" } else { "it is not in RECORD" };
                if options.strict_record {
                    return Err(WheelError::Unverified {
                        wheel: wheel.into(),
                        entry: entry_name,
                        reason: reason.into(),
                    });
                }
                record_problems.push(format!("`{entry_name}`: {reason}"));
                None
            }
        };
        let verify = match &expected {
            Some(((algorithm, _), _)) => {
                Some(RecordHasher::new(algorithm).ok_or_else(|| WheelError::Unverified {
                    wheel: wheel.into(),
                    entry: entry_name.clone(),
                    reason: format!("unsupported hash algorithm `{algorithm}`"),
                })?)
            }
            None => None,
        };
        let layer_err = |source| WheelError::Layer { wheel: wheel.into(), entry: entry_name.clone(), source };
        // Decompression stops at the size the zip's directory claims for the member.
        let (claimed, what) = (entry.size(), format!("{entry_name} of {}", wheel.display()));
        let mut input = HashingReader::new(bounded::Reader::claimed(&mut entry, claimed, what), verify);
        let (hash, size) = if is_script {
            let mut buffered = BufReader::new(&mut input);
            let mut first_line = Vec::new();
            (&mut buffered)
                .take(MAX_SHEBANG_LEN)
                .read_until(b'\n', &mut first_line)
                .map_err(|source| WheelError::Read { wheel: wheel.into(), source })?;
            let first_line = rewrite_shebang(&first_line, &options.python).unwrap_or(first_line);
            let mut output = HashingReader::new(io::Cursor::new(first_line).chain(&mut buffered), None);
            layer.add_file(&destination, 0o755, &mut output).map_err(layer_err)?;
            output.finish_sha256()
        } else if module || shipped {
            let mode = if executable { 0o755 } else { 0o644 };
            let mut bytes = Vec::new();
            input
                .read_to_end(&mut bytes)
                .map_err(|source| WheelError::Read { wheel: wheel.into(), source })?;
            if module {
                layer.add_file(&destination, mode, &mut bytes.as_slice()).map_err(layer_err)?;
            }
            let (hash, size) = input.finish_sha256();
            if module {
                sources.push((destination.clone(), bytes.into()));
            } else {
                let file =
                    Installed { path: destination.clone(), hash: Some(hash.clone()), size: Some(size) };
                shipped_pyc.insert(destination.clone(), (mode, bytes, file));
            }
            (hash, size)
        } else {
            let mode = if executable { 0o755 } else { 0o644 };
            layer.add_file(&destination, mode, &mut input).map_err(layer_err)?;
            input.finish_sha256()
        };
        if let Some(((algorithm, digest), expected_size)) = expected {
            let (found_digest, found_size) = input.finish_verify();
            if found_digest.as_deref() != Some(digest.as_str())
                || expected_size.is_some_and(|s| s != found_size)
            {
                let describe = |digest: &str, size: Option<u64>| match size {
                    Some(size) => format!("{algorithm}={digest} ({size} bytes)"),
                    None => format!("{algorithm}={digest}"),
                };
                let expected = describe(&digest, expected_size);
                let found = describe(found_digest.as_deref().unwrap_or(""), Some(found_size));
                if options.strict_record {
                    return Err(WheelError::RecordMismatch {
                        wheel: wheel.into(),
                        expected,
                        found,
                        entry: entry_name,
                    });
                }
                record_problems.push(format!("`{entry_name}`: RECORD says {expected}, found {found}"));
            }
        }
        if !shipped {
            installed.push(Installed { path: destination, hash: Some(hash), size: Some(size) });
        }
    }

    let (mut compiled, mut not_compiled) = (0, Vec::new());
    if let Some(compiler) = options.bytecode.filter(|_| !sources.is_empty()) {
        let modules: Vec<PySource<'_>> =
            sources.iter().map(|(path, source)| PySource { path, source }).collect();
        let results = compiler
            .compile(&modules)
            .map_err(|source| WheelError::Bytecode { wheel: wheel.into(), source })?;
        if results.len() != modules.len() {
            let reason = format!("{} results for {} modules", results.len(), modules.len());
            return Err(WheelError::Bytecode { wheel: wheel.into(), source: reason.into() });
        }
        for (module, result) in modules.iter().zip(results) {
            let pyc = match result {
                Compiled::Pyc(pyc) => pyc,
                Compiled::Failed(reason) => {
                    not_compiled.push(format!("`{}`: {reason}", module.path));
                    continue;
                }
            };
            let Some(path) = cache_path(module.path, compiler.cache_tag()) else { continue };
            shipped_pyc.remove(&path);
            layer.add_file(&path, 0o644, &mut &pyc[..]).map_err(|source| WheelError::Layer {
                wheel: wheel.into(),
                entry: path.clone(),
                source,
            })?;
            let hash = urlsafe_b64_nopad(&Sha256::digest(&pyc));
            installed.push(Installed { path, hash: Some(hash), size: Some(pyc.len() as u64) });
            compiled += 1;
        }
    }
    for (path, (mode, bytes, file)) in shipped_pyc {
        layer.add_file(&path, mode, &mut bytes.as_slice()).map_err(|source| WheelError::Layer {
            wheel: wheel.into(),
            entry: path.clone(),
            source,
        })?;
        installed.push(file);
    }

    let dist_info_path = format!("{root}/{dist_info}");
    let mut generated = Vec::new();
    for script in &scripts {
        generated.push((
            format!("{}/{}", scheme.scripts, script.name),
            0o755,
            script.launcher(&options.python),
        ));
    }
    generated.push((format!("{dist_info_path}/INSTALLER"), 0o644, format!("{INSTALLER}\n")));
    if options.requested {
        generated.push((format!("{dist_info_path}/REQUESTED"), 0o644, String::new()));
    }
    for (path, mode, content) in generated {
        layer.add_file(&path, mode, &mut content.as_bytes()).map_err(|source| WheelError::Layer {
            wheel: wheel.into(),
            entry: path.clone(),
            source,
        })?;
        let hash = urlsafe_b64_nopad(&Sha256::digest(content.as_bytes()));
        installed.push(Installed { path, hash: Some(hash), size: Some(content.len() as u64) });
    }
    let record_path = format!("{dist_info_path}/RECORD");
    installed.push(Installed { path: record_path.clone(), hash: None, size: None });
    let record = write_record(root, &installed);
    layer.add_file(&record_path, 0o644, &mut record.as_bytes()).map_err(|source| WheelError::Layer {
        wheel: wheel.into(),
        entry: record_path,
        source,
    })?;

    let mut files: Vec<String> = installed.into_iter().map(|file| file.path).collect();
    files.sort();
    Ok(InstalledWheel {
        name: name.to_string(),
        version: version.to_string(),
        dist_info: dist_info_path,
        files,
        record_problems,
        compiled,
        not_compiled,
        metadata,
    })
}

/// The first [`MAX_METADATA`] bytes of the member `name`, lossily as UTF-8.
fn read_metadata<R: Read + io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    wheel: &Path,
    name: &str,
) -> Result<Option<String>, WheelError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(source) => return Err(WheelError::Zip { wheel: wheel.into(), source }),
    };
    let (claimed, what) = (entry.size(), format!("{name} of {}", wheel.display()));
    let mut bytes = Vec::new();
    bounded::Reader::claimed(entry, claimed, what)
        .take(MAX_METADATA)
        .read_to_end(&mut bytes)
        .map_err(|source| WheelError::Read { wheel: wheel.into(), source })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn bad_metadata(wheel: &Path, file: &str, reason: String) -> WheelError {
    WheelError::BadMetadata { wheel: wheel.into(), file: file.to_string(), reason }
}

/// The one top-level `*.dist-info` directory that holds a `WHEEL` file.
fn find_dist_info(wheel: &Path, names: &[String]) -> Result<String, WheelError> {
    let mut found: Vec<&str> = names
        .iter()
        .filter_map(|name| name.strip_suffix("/WHEEL"))
        .filter(|dir| !dir.contains('/') && dir.ends_with(".dist-info"))
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(WheelError::DistInfo { wheel: wheel.into(), found: "none".into() }),
        several => Err(WheelError::DistInfo { wheel: wheel.into(), found: several.join(", ") }),
    }
}

/// Reads a small text member of the archive, `None` when it is absent.
fn read_text<R: Read + io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    wheel: &Path,
    name: &str,
) -> Result<Option<String>, WheelError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(source) => return Err(WheelError::Zip { wheel: wheel.into(), source }),
    };
    // Held in memory: at most what the directory claims, and no more than a text file's limit.
    let (claimed, what) = (entry.size(), format!("{name} of {}", wheel.display()));
    let claimed = claimed.min(bounded::MAX_TEXT_FILE);
    let mut text = String::new();
    bounded::Reader::claimed(entry, claimed, what)
        .read_to_string(&mut text)
        .map_err(|source| WheelError::Read { wheel: wheel.into(), source })?;
    Ok(Some(text))
}

/// The parsers of a wheel's `RECORD`, `WHEEL` and `entry_points.txt`, for the fuzz targets
/// (`crates/fuzz`). Panics if a RECORD field written by our writer does not read back.
/// Not an API.
#[doc(hidden)]
pub fn fuzz_wheel_texts(text: &str) {
    if let Ok(rows) = record::parse_record(text) {
        for (path, _) in rows {
            let line = format!("{},,", record::csv_field(&path));
            let back = record::parse_record(&line).map(|r| r.into_iter().map(|(p, _)| p).collect::<Vec<_>>());
            if !path.contains(['\n', '\r']) {
                assert_eq!(back, Ok(vec![path.clone()]), "RECORD path {path:?} does not read back");
            }
        }
    }
    let _ = parse_wheel_file(text);
    let _ = entry_points::parse_script_entry_points(text);
    let _ = member_components(text);
}

/// Checks `Wheel-Version` (1.x) and returns `Root-Is-Purelib`.
fn parse_wheel_file(text: &str) -> Result<bool, String> {
    let mut version = None;
    let mut purelib = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "Wheel-Version" => version = Some(value.trim().to_string()),
                "Root-Is-Purelib" => purelib = Some(value.trim().eq_ignore_ascii_case("true")),
                _ => {}
            }
        }
    }
    match version.as_deref().and_then(|version| version.split('.').next()) {
        Some("1") => Ok(purelib.unwrap_or(false)),
        Some(_) => Err(format!("unsupported Wheel-Version {}", version.unwrap_or_default())),
        None => Err("no Wheel-Version".into()),
    }
}

/// Splits a zip member name into path components, refusing what could leave the destination.
fn member_components(name: &str) -> Result<Vec<&str>, &'static str> {
    const RULES: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Refuse };
    let components = safe_path::normalize(name, RULES).map_err(|refusal| match refusal {
        Refusal::Absolute => "absolute path",
        Refusal::Backslash => "backslash in path",
        Refusal::Nul => "NUL in path",
        Refusal::ParentDir | Refusal::Escapes => "`..` in path",
        Refusal::DriveLetter => "drive letter in path",
    })?;
    if components.is_empty() {
        return Err("empty path");
    }
    Ok(components)
}

/// `#!python ARGS` (or `#!pythonw`) becomes `#!<python> ARGS`; other first lines are kept.
fn rewrite_shebang(first_line: &[u8], python: &str) -> Option<Vec<u8>> {
    let rest = first_line.strip_prefix(b"#!python")?;
    let rest = rest.strip_prefix(b"w").unwrap_or(rest);
    if rest.first().is_some_and(|byte| !byte.is_ascii_whitespace()) {
        return None;
    }
    Some([b"#!", python.as_bytes(), rest].concat())
}

/// The new `RECORD`: every installed file relative to `root`, sorted, as pip writes it.
fn write_record(root: &str, installed: &[Installed]) -> String {
    let rows: BTreeMap<String, String> = installed
        .iter()
        .map(|file| {
            let hash = file.hash.as_ref().map(|hash| format!("sha256={hash}")).unwrap_or_default();
            let size = file.size.map(|size| size.to_string()).unwrap_or_default();
            (relative_path(root, &file.path), format!("{hash},{size}"))
        })
        .collect();
    rows.into_iter().map(|(path, rest)| format!("{},{rest}\n", csv_field(&path))).collect()
}

/// `target` relative to the directory `base` (both absolute), with `..` where needed.
fn relative_path(base: &str, target: &str) -> String {
    let base: Vec<&str> = base.split('/').filter(|part| !part.is_empty()).collect();
    let target: Vec<&str> = target.split('/').filter(|part| !part.is_empty()).collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts = vec![".."; base.len() - common];
    parts.extend(&target[common..]);
    parts.join("/")
}

/// A reader that hashes what passes through: always sha256 (for the new `RECORD`), plus the
/// algorithm of the wheel's `RECORD` when the content is verified.
struct HashingReader<R> {
    inner: R,
    sha256: Sha256,
    verify: Option<RecordHasher>,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, verify: Option<RecordHasher>) -> Self {
        HashingReader { inner, sha256: Sha256::new(), verify, len: 0 }
    }

    /// The sha256 so far in `RECORD`'s encoding, and the length; resets the sha256.
    fn finish_sha256(&mut self) -> (String, u64) {
        (urlsafe_b64_nopad(&std::mem::take(&mut self.sha256).finalize()), self.len)
    }

    /// The digest for verification (if any) and the length.
    fn finish_verify(self) -> (Option<String>, u64) {
        (self.verify.map(RecordHasher::finish), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.sha256.update(&buf[..read]);
        if let Some(verify) = &mut self.verify {
            verify.update(&buf[..read]);
        }
        self.len += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_as_pip_writes_them() {
        let site = "/usr/local/lib/python3.9/dist-packages";
        assert_eq!(relative_path(site, "/usr/local/bin/foo"), "../../../bin/foo");
        assert_eq!(relative_path(site, &format!("{site}/pkg/__init__.py")), "pkg/__init__.py");
        assert_eq!(
            relative_path(site, "/usr/local/include/python3.9/pkg/a.h"),
            "../../../include/python3.9/pkg/a.h"
        );
    }

    #[test]
    fn shebangs_are_rewritten_only_for_python() {
        let python = "/usr/bin/python3.9";
        assert_eq!(rewrite_shebang(b"#!python\n", python).unwrap(), b"#!/usr/bin/python3.9\n");
        assert_eq!(rewrite_shebang(b"#!python -u\n", python).unwrap(), b"#!/usr/bin/python3.9 -u\n");
        assert_eq!(rewrite_shebang(b"#!pythonw", python).unwrap(), b"#!/usr/bin/python3.9");
        assert!(rewrite_shebang(b"#!python3\n", python).is_none());
        assert!(rewrite_shebang(b"#!/bin/sh\n", python).is_none());
    }

    #[test]
    fn member_names_that_escape_are_refused() {
        assert_eq!(member_components("a/./b").unwrap(), ["a", "b"]);
        for name in ["/etc/passwd", "a/../../x", "..", "C:/x", "a\\..\\x", ""] {
            assert!(member_components(name).is_err(), "{name}");
        }
    }

    #[test]
    fn wheel_file_versions() {
        assert_eq!(parse_wheel_file("Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"), Ok(true));
        assert_eq!(parse_wheel_file("Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"), Ok(false));
        assert!(parse_wheel_file("Wheel-Version: 2.0\n").is_err());
    }
}
