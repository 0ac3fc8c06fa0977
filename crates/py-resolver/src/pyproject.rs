//! `pyproject.toml` as a compile input, as pip-compile takes it: the project's static
//! `[project] dependencies` (PEP 621), and its `optional-dependencies` for the extras asked for.
//! A project whose dependencies are `dynamic` (or that has no `[project]` table, as Poetry's
//! older layout) would need its build backend run; that is refused with a hint.

use std::collections::BTreeSet;
use std::path::Path;

use pep_types::PackageName;

use crate::requirements::{Entry, Origin, RequirementsError};

/// Which optional dependencies to add: the named extras, or every one.
#[derive(Debug, Clone, Default)]
pub struct ExtraSelection {
    pub names: Vec<String>,
    pub all: bool,
}

/// The requirements of the project in `text` (read from `shown`), with their origins and the
/// label pip-compile writes in `# via` (`NAME (pyproject.toml)`).
pub(crate) fn project_requirements(
    text: &str,
    shown: &str,
    extras: &ExtraSelection,
) -> Result<(String, Vec<Entry>), RequirementsError> {
    let at = |line: usize, message: String| RequirementsError::Syntax {
        origin: Origin { file: shown.to_string(), line },
        message,
    };
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| at(toml_line(text, &e), format!("not valid TOML: {}", e.message())))?;
    let Some(project) = doc.get("project").and_then(toml::Value::as_table) else {
        return Err(at(
            1,
            "has no [project] table (PEP 621): its dependencies are known only to its build \
             backend, which marqo-base does not run for an input; list them in a requirements.in"
                .into(),
        ));
    };
    let project_line = line_of(text, "[project]").unwrap_or(1);
    let name = match project.get("name").and_then(toml::Value::as_str) {
        Some(n) => PackageName::new(n.to_string())
            .map_err(|e| at(project_line, format!("[project] name `{n}`: {e}")))?
            .to_string(),
        None => return Err(at(project_line, "[project] has no `name`".into())),
    };
    let dynamic: BTreeSet<&str> = project
        .get("dynamic")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    for key in ["dependencies", "optional-dependencies"] {
        let wanted = key == "dependencies" || extras.all || !extras.names.is_empty();
        if wanted && dynamic.contains(key) {
            return Err(at(
                project_line,
                format!(
                    "[project] `{key}` is dynamic: only the build backend knows them, and \
                     marqo-base does not run it for an input; list them in a requirements.in"
                ),
            ));
        }
    }
    let mut specs: Vec<(String, Option<String>)> = Vec::new();
    for value in strings(project.get("dependencies"), "dependencies").map_err(|m| at(project_line, m))? {
        specs.push((value, None));
    }
    let optional = match project.get("optional-dependencies") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => return Err(at(project_line, "[project] `optional-dependencies` must be a table".into())),
    };
    // Extras compare as PEP 685 normalizes them (`Dev_Tools` is `dev-tools`).
    let normalise =
        |s: &str| s.parse::<pep_types::ExtraName>().map_or_else(|_| s.to_string(), |e| e.to_string());
    for wanted in &extras.names {
        if !optional.keys().any(|k| normalise(k) == normalise(wanted)) {
            let known: Vec<&str> = optional.keys().map(String::as_str).collect();
            return Err(at(
                project_line,
                format!(
                    "--extra {wanted}: the project has no such extra (it has: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            ));
        }
    }
    for (extra, list) in &optional {
        if extras.all || extras.names.iter().any(|w| normalise(w) == normalise(extra)) {
            for value in strings(Some(list), &format!("optional-dependencies.{extra}"))
                .map_err(|m| at(project_line, m))?
            {
                specs.push((value, Some(extra.clone())));
            }
        }
    }
    let mut entries = Vec::new();
    for (spec, _extra) in specs {
        let line = line_of(text, &spec).unwrap_or(project_line);
        let req = pep_types::parse_requirement(&spec).map_err(|e| {
            at(line, format!("invalid requirement `{spec}`: {}", e.to_string().lines().next().unwrap_or("")))
        })?;
        if matches!(req.version_or_url, Some(pep_types::VersionOrUrl::Url(_))) {
            return Err(at(
                line,
                format!("`{spec}`: direct URL requirements are not supported; use a version specifier"),
            ));
        }
        if req.name.to_string() == name {
            // A self-reference (`proj[extra]` in an extra) adds that extra's requirements,
            // which `--all-extras`/`--extra` select directly.
            continue;
        }
        entries.push(Entry { req, origin: Origin { file: shown.to_string(), line }, hashes: Vec::new() });
    }
    Ok((format!("{name} ({shown})"), entries))
}

fn strings(value: Option<&toml::Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| format!("[project] `{what}` must hold strings"))
            })
            .collect(),
        Some(_) => Err(format!("[project] `{what}` must be an array of strings")),
    }
}

/// The 1-based line where `needle` first occurs.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

fn toml_line(text: &str, e: &toml::de::Error) -> usize {
    e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1)
}

/// Whether `path` is read as a project rather than a requirements file.
pub(crate) fn is_pyproject(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "pyproject.toml")
}
