//! The pip requirements file format: what `requirements.in` (input) and `requirements.txt`
//! (our output, read back for its pins) contain.
//!
//! Supported: PEP 508 lines with extras and markers, `-r`/`--requirement`, `-c`/`--constraint`,
//! `-i`/`--index-url`, `--extra-index-url`, `-f`/`--find-links`, `--no-index`, `--pre`,
//! `--only-binary`, `--no-binary`, `--prefer-binary`,
//! per-requirement `--hash`, comments, `\` line continuations and `${VAR}` expansion (as pip).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use pep_types::requirements_txt::logical_lines;
use pep_types::{PackageName, Req};

use crate::pyproject::{is_pyproject, project_requirements, ExtraSelection};

/// Where a requirement came from: a file and a 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The path as the user (or the including file) wrote it.
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One requirement line with its origin and `--hash` options.
#[derive(Debug, Clone)]
pub struct Entry {
    pub req: Req,
    pub origin: Origin,
    /// `sha256:<hex>` values from `--hash` options, if any.
    pub hashes: Vec<String>,
}

/// Everything read from a set of requirement files, `-r` and `-c` followed.
#[derive(Debug, Clone, Default)]
pub struct RequirementSet {
    pub requirements: Vec<Entry>,
    pub constraints: Vec<Entry>,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub find_links: Vec<String>,
    pub no_index: bool,
    pub pre: bool,
    /// `--only-binary` / `--no-binary` lines, in file order.
    pub format: crate::FormatControl,
    /// A `--prefer-binary` line.
    pub prefer_binary: bool,
    /// Every file read, in order (for the input fingerprint of `--check`).
    pub files: Vec<PathBuf>,
    /// `pyproject.toml` inputs: the file as shown in origins, and the `# via` label of its
    /// requirements (`NAME (pyproject.toml)`, as pip-compile writes it).
    pub projects: Vec<(String, String)>,
}

/// A requirements file that cannot be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("cannot read requirements file `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    #[error("`{path}` includes itself through -r/-c")]
    Cycle { path: String },
    #[error("{message}")]
    Extras { message: String },
}

impl RequirementSet {
    /// Reads requirement files (`-r` files are requirements, `-c` files constraints).
    pub fn read_files(paths: &[PathBuf], constraints: &[PathBuf]) -> Result<Self, RequirementsError> {
        Self::read_inputs(paths, constraints, &ExtraSelection::default())
    }

    /// Reads compile inputs: requirement files, and `pyproject.toml` files as pip-compile takes
    /// them (the project's static dependencies, plus the optional dependencies of `extras`).
    pub fn read_inputs(
        paths: &[PathBuf],
        constraints: &[PathBuf],
        extras: &ExtraSelection,
    ) -> Result<Self, RequirementsError> {
        let mut set = RequirementSet::default();
        let mut stack = BTreeSet::new();
        let projects = paths.iter().filter(|p| is_pyproject(p)).count();
        if projects == 0 && (extras.all || !extras.names.is_empty()) {
            return Err(RequirementsError::Extras {
                message: "--extra and --all-extras select a project's optional dependencies: \
                          name its pyproject.toml as an input"
                    .into(),
            });
        }
        for path in paths {
            let shown = path.display().to_string();
            if is_pyproject(path) {
                let text = bounded::read_file_to_string(path, bounded::MAX_TEXT_FILE, "a pyproject.toml")
                    .map_err(|source| RequirementsError::Read { path: shown.clone(), source })?;
                let (label, entries) = project_requirements(&text, &shown, extras)?;
                set.files.push(path.to_path_buf());
                set.projects.push((shown, label));
                set.requirements.extend(entries);
                continue;
            }
            set.read_file(path, &shown, Kind::Requirement, &mut stack)?;
        }
        for path in constraints {
            set.read_file(path, &path.display().to_string(), Kind::Constraint, &mut stack)?;
        }
        Ok(set)
    }

    /// Parses requirement text as if read from a file named `name` (used for tests and stdin).
    pub fn parse_str(text: &str, name: &str, base: &Path) -> Result<Self, RequirementsError> {
        let mut set = RequirementSet::default();
        set.parse_text(text, name, base, Kind::Requirement, &mut BTreeSet::new())?;
        Ok(set)
    }

    fn read_file(
        &mut self,
        path: &Path,
        shown: &str,
        kind: Kind,
        stack: &mut BTreeSet<PathBuf>,
    ) -> Result<(), RequirementsError> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !stack.insert(canonical.clone()) {
            return Err(RequirementsError::Cycle { path: shown.to_string() });
        }
        let text = bounded::read_file_to_string(path, bounded::MAX_TEXT_FILE, "a requirements file")
            .map_err(|source| RequirementsError::Read { path: shown.to_string(), source })?;
        self.files.push(path.to_path_buf());
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        self.parse_text(&text, shown, &base, kind, stack)?;
        stack.remove(&canonical);
        Ok(())
    }

    fn parse_text(
        &mut self,
        text: &str,
        name: &str,
        base: &Path,
        kind: Kind,
        stack: &mut BTreeSet<PathBuf>,
    ) -> Result<(), RequirementsError> {
        // pip decodes a file with a byte-order mark by it, and the mark is not part of the text.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (line_no, line) in logical_lines(text) {
            let origin = Origin { file: name.to_string(), line: line_no };
            let syntax = |message: String| RequirementsError::Syntax { origin: origin.clone(), message };
            let line = line.as_str();
            if line.starts_with('-') {
                let (opt, value) = split_option(line);
                let value = value.map(str::trim).filter(|v| !v.is_empty());
                let need = |what: &str| {
                    value.map(str::to_string).ok_or_else(|| syntax(format!("`{opt}` needs {what}")))
                };
                match opt {
                    "-r" | "--requirement" | "-c" | "--constraint" => {
                        let file = need("a file name")?;
                        let nested_kind =
                            if opt == "-c" || opt == "--constraint" { Kind::Constraint } else { kind };
                        let path = base.join(&file);
                        let shown = if base == Path::new("") || base == Path::new(".") {
                            file.clone()
                        } else {
                            path.display().to_string()
                        };
                        self.read_file(&path, &shown, nested_kind, stack)?;
                    }
                    "-i" | "--index-url" => self.index_url = Some(need("a URL")?),
                    "--extra-index-url" => self.extra_index_urls.push(need("a URL")?),
                    "-f" | "--find-links" => {
                        if let Some(location) =
                            find_links_location(&need("a URL or directory")?, base, &origin)
                        {
                            self.find_links.push(location);
                        }
                    }
                    "--no-index" => self.no_index = true,
                    "--pre" => self.pre = true,
                    "--prefer-binary" => self.prefer_binary = true,
                    "--only-binary" => {
                        self.format.only_binary(&need("package names, :all: or :none:")?).map_err(syntax)?
                    }
                    "--no-binary" => {
                        self.format.no_binary(&need("package names, :all: or :none:")?).map_err(syntax)?
                    }
                    "--trusted-host" => {
                        tracing::warn!("{origin}: `{opt}` is ignored");
                    }
                    "-e" | "--editable" => {
                        return Err(syntax(
                            "editable requirements (-e) are not supported; name the package instead".into(),
                        ))
                    }
                    _ => return Err(syntax(format!("unknown option `{opt}`"))),
                }
                continue;
            }
            let (spec, hashes) = split_hashes(line).map_err(syntax)?;
            let req = pep_types::parse_requirement(spec).map_err(|e| {
                syntax(format!("invalid requirement `{spec}`: {}", first_line(&e.to_string())))
            })?;
            if matches!(req.version_or_url, Some(pep_types::VersionOrUrl::Url(_))) {
                return Err(syntax(format!(
                    "`{spec}`: direct URL requirements are not supported; use a version specifier"
                )));
            }
            let entry = Entry { req, origin, hashes };
            match kind {
                Kind::Requirement => self.requirements.push(entry),
                Kind::Constraint => self.constraints.push(entry),
            }
        }
        Ok(())
    }

    /// The names of all direct requirements.
    pub fn names(&self) -> BTreeSet<PackageName> {
        self.requirements.iter().map(|e| e.req.name.clone()).collect()
    }
}

/// A `-f` location of a requirements file as pip takes it: a URL as is; a relative path
/// against the file's directory when it exists there, else as given (against the working
/// directory). A directory that exists nowhere is left out with a warning naming the line,
/// as pip warns and goes on.
fn find_links_location(value: &str, base: &Path, origin: &Origin) -> Option<String> {
    if url::Url::parse(value).is_ok_and(|u| u.scheme().len() > 1) {
        return Some(value.to_string());
    }
    let path = Path::new(value);
    let beside = base.join(path);
    if path.is_relative() && !matches!(base.to_str(), Some("" | ".")) && beside.exists() {
        return Some(beside.display().to_string());
    }
    if path.exists() {
        return Some(value.to_string());
    }
    let looked = if path.is_relative() && !matches!(base.to_str(), Some("" | ".")) {
        format!("neither {} nor {value} in the working directory exists", beside.display())
    } else {
        "it does not exist".to_string()
    };
    tracing::warn!("{origin}: find-links location `{value}` is ignored: {looked}");
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requirement,
    Constraint,
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// `--opt=value`, `--opt value`, `-rfile`, `-r file`.
fn split_option(line: &str) -> (&str, Option<&str>) {
    if let Some(long) = line.strip_prefix("--") {
        let end = long.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(long.len());
        let opt = &line[..end + 2];
        let value = line[end + 2..].trim_start_matches(|c: char| c == '=' || c.is_whitespace());
        return (opt, Some(value));
    }
    // `-` and the next character, which may take several bytes (found by the fuzz target
    // `requirements_txt`: slicing two bytes split it).
    let end = line.char_indices().nth(2).map_or(line.len(), |(i, _)| i);
    let opt = &line[..end];
    (opt, Some(line[opt.len()..].trim_start()))
}

/// Splits trailing `--hash=sha256:...` options off a requirement line.
fn split_hashes(line: &str) -> Result<(&str, Vec<String>), String> {
    let Some(pos) = line.find("--hash") else {
        return Ok((line, Vec::new()));
    };
    let spec = line[..pos].trim();
    let mut hashes = Vec::new();
    for part in line[pos..].split("--hash").map(str::trim).filter(|p| !p.is_empty()) {
        let value = part.trim_start_matches(|c: char| c == '=' || c.is_whitespace()).trim();
        let (algo, hex) = value
            .split_once(':')
            .ok_or_else(|| format!("`--hash {value}` should be `--hash=sha256:<hex>`"))?;
        if algo != "sha256" {
            return Err(format!("only sha256 hashes are supported, found `{algo}`"));
        }
        hashes.push(format!("sha256:{hex}"));
    }
    Ok((spec, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pip_syntax() {
        let text =
            "requests==2.28.1  # pinned\n# comment\nfoo[bar,baz] >= 1.0 ; platform_machine == \"x86_64\"\n\
                    --extra-index-url http://127.0.0.1:1/simple\nlong \\\n  >=2\n";
        let set = RequirementSet::parse_str(text, "requirements.in", Path::new(".")).unwrap();
        let names: Vec<_> = set.requirements.iter().map(|e| e.req.name.to_string()).collect();
        assert_eq!(names, ["requests", "foo", "long"]);
        assert_eq!(set.requirements[1].req.extras.len(), 2);
        assert_eq!(set.requirements[2].origin.line, 5);
        assert_eq!(set.extra_index_urls, ["http://127.0.0.1:1/simple"]);
    }

    #[test]
    fn errors_name_the_line() {
        let err = RequirementSet::parse_str("ok==1\nbad===\n", "r.in", Path::new(".")).unwrap_err();
        assert!(err.to_string().starts_with("r.in:2: invalid requirement `bad===`"), "{err}");
        let err = RequirementSet::parse_str("-e .\n", "r.in", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("r.in:1: editable"), "{err}");
        let err = RequirementSet::parse_str("--frobnicate\n", "r.in", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("unknown option `--frobnicate`"), "{err}");
        let err = RequirementSet::parse_str("-\u{e9} base.in\n", "r.in", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("r.in:1: unknown option `-\u{e9}`"), "{err}");
        let err = RequirementSet::parse_str("--frobnicate\n", "r.in", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("unknown option `--frobnicate`"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line() {
        let set = RequirementSet::parse_str("\u{feff}requests==2.0\n", "r.in", Path::new(".")).unwrap();
        assert_eq!(set.requirements[0].req.name.to_string(), "requests");
        assert_eq!(set.requirements[0].origin.line, 1);
    }

    #[test]
    fn find_links_resolve_against_the_file_then_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/wheels")).unwrap();
        std::fs::write(dir.path().join("sub/r.in"), "-f wheels\n-f missing\n-f https://127.0.0.1:1/links\n")
            .unwrap();
        let set = RequirementSet::read_files(&[dir.path().join("sub/r.in")], &[]).unwrap();
        assert_eq!(
            set.find_links,
            [dir.path().join("sub/wheels").display().to_string(), "https://127.0.0.1:1/links".to_string()]
        );
    }

    #[test]
    fn reads_hashes_and_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), "foo<2\n").unwrap();
        std::fs::write(dir.path().join("base.in"), "bar\n").unwrap();
        std::fs::write(
            dir.path().join("main.in"),
            "-r base.in\n-c c.txt\nfoo==1.0 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n",
        )
        .unwrap();
        let set = RequirementSet::read_files(&[dir.path().join("main.in")], &[]).unwrap();
        assert_eq!(set.requirements.len(), 2);
        assert_eq!(set.constraints.len(), 1);
        assert_eq!(set.requirements[1].hashes, ["sha256:ab", "sha256:cd"]);
        assert_eq!(set.files.len(), 3);
        std::fs::write(dir.path().join("loop.in"), "-r loop.in\n").unwrap();
        assert!(matches!(
            RequirementSet::read_files(&[dir.path().join("loop.in")], &[]),
            Err(RequirementsError::Cycle { .. })
        ));
    }
}
