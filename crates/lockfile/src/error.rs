//! What can go wrong reading a manifest, a lock or the files they name. A parse error says
//! where (file, line, column, key), what, and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// An error from reading or writing a manifest, a lock or their inputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A requirements file names (with `-r` or `-c`) a file that cannot be read.
    #[error("{from}: cannot read `{}`: {source}", path.display())]
    Include {
        /// `file:line` of the `-r`/`-c` line.
        from: String,
        /// The file it names, resolved against the including file's directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A `[debian] ca_certificates` file cannot be read.
    #[error("[debian] ca_certificates: cannot read `{}`: {source}", path.display())]
    CaCertificate {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An input of `[[file]]` is neither a file, a directory nor a symbolic link.
    #[error("`{}` is not a regular file, a directory or a symbolic link", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },

    /// A file cannot be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A manifest or lock is not valid TOML, has an unknown key, or holds a bad value.
    #[error(transparent)]
    Parse(Box<ParseError>),
}

impl Error {
    /// How to fix it, when the reader can tell (a parse error's `did you mean …?`).
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Parse(e) => e.hint.as_deref(),
            Error::CaCertificate { .. } => Some(
                "name a PEM certificate file, relative to the manifest's directory (such as \"certs/my-ca.crt\"), \
                 or remove it from [debian] ca_certificates",
            ),
            _ => None,
        }
    }
}

/// The error type of [`Manifest::read`](crate::Manifest::read).
pub type ManifestError = Error;

impl From<Box<ParseError>> for Error {
    fn from(e: Box<ParseError>) -> Error {
        Error::Parse(e)
    }
}

/// Where and why a manifest or lock is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file, as given to the reader.
    pub file: PathBuf,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The dotted key path (`debian.packages[2]`), when the error is inside a table.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell (`did you mean `packages`?`).
    pub hint: Option<String>,
    /// The source line, for display.
    pub source_line: String,
    /// How many characters of `source_line` from `column` to underline (at least 1).
    pub width: usize,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    /// ```text
    /// marqo-base.toml:9:1: `debian.packges`: unknown key
    ///   |
    /// 9 | packges = ["jq"]
    ///   | ^^^^^^^
    /// ```
    ///
    /// The hint (`did you mean `packages`?`) is not part of it: [`Error::hint`] gives it, and
    /// the binary prints it last, after the causes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.is_empty() {
            let gutter = " ".repeat(self.line.to_string().len());
            let pad = " ".repeat(self.column.saturating_sub(1));
            write!(
                f,
                "\n{gutter} |\n{} | {}\n{gutter} | {pad}{}",
                self.line,
                self.source_line,
                "^".repeat(self.width.max(1))
            )?;
        }
        Ok(())
    }
}
