//! Licenses as SPDX license expressions, from what packages declare: a Debian package's
//! machine-readable `copyright` file (DEP-5), a Python distribution's core metadata.
//!
//! Only names this module knows become SPDX identifiers (an alias table: Debian's short
//! names such as `Expat` or `GPL-2+`, pip's trove classifiers, common spellings). Any other
//! name is kept, not dropped: it becomes a `LicenseRef-…` of the document, which declares it
//! with the name as written. A package that declares nothing readable has no license
//! (`NOASSERTION`).

use std::collections::BTreeMap;

/// A declared license: an SPDX license expression whose `LicenseRef-` identifiers are named
/// in `refs`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct License {
    /// The expression (`MIT`, `GPL-2.0-or-later OR Artistic-1.0`, `LicenseRef-PSF-like`).
    pub expression: String,
    /// Each `LicenseRef-` identifier of the expression, with the name it stands for.
    pub refs: BTreeMap<String, String>,
}

impl License {
    /// Whether the expression is SPDX identifiers only.
    pub fn is_spdx_only(&self) -> bool {
        self.refs.is_empty()
    }

    /// The license of the names declared as written, joined: the text of one declaration
    /// (`GPL-2+ or Artistic`, `Apache 2.0`), read with `and`/`or` (any case), `,` and `|`
    /// as operators and parentheses ignored; `None` when it names nothing.
    pub fn from_declaration(text: &str) -> Option<License> {
        let text = text.replace(['(', ')'], " ");
        let mut expression = Vec::new();
        let mut refs = BTreeMap::new();
        let mut atom: Vec<&str> = Vec::new();
        let mut flush = |atom: &mut Vec<&str>, expression: &mut Vec<String>| {
            if atom.is_empty() {
                return;
            }
            let name = atom.join(" ");
            atom.clear();
            expression.push(match spdx_id(&name) {
                Some(id) => id,
                None => {
                    let id = license_ref(&name);
                    refs.insert(id.clone(), name);
                    id
                }
            });
        };
        for token in text.split_whitespace() {
            let op = match token.to_ascii_lowercase().as_str() {
                "or" | "|" => Some("OR"),
                "and" | "&" | "," => Some("AND"),
                _ => None,
            };
            match op {
                Some(op) => {
                    flush(&mut atom, &mut expression);
                    if expression.last().is_some_and(|last| last != "OR" && last != "AND") {
                        expression.push(op.to_string());
                    }
                }
                None => match token.strip_suffix(',') {
                    Some(word) => {
                        if !word.is_empty() {
                            atom.push(word);
                        }
                        flush(&mut atom, &mut expression);
                        if expression.last().is_some_and(|last| last != "OR" && last != "AND") {
                            expression.push("AND".to_string());
                        }
                    }
                    None => atom.push(token),
                },
            }
        }
        flush(&mut atom, &mut expression);
        while expression.last().is_some_and(|last| last == "OR" || last == "AND") {
            expression.pop();
        }
        if expression.is_empty() {
            return None;
        }
        Some(License { expression: expression.join(" "), refs })
    }

    /// All of `licenses` (each part of what a package holds): one expression of them with
    /// `AND`, each parenthesized when it has an operator of its own; duplicates once.
    pub fn all_of(licenses: Vec<License>) -> Option<License> {
        let mut unique: Vec<License> = Vec::new();
        for license in licenses {
            if !unique.contains(&license) {
                unique.push(license);
            }
        }
        unique.sort();
        match unique.len() {
            0 => None,
            1 => unique.pop(),
            _ => {
                let mut refs = BTreeMap::new();
                let parts: Vec<String> = unique
                    .into_iter()
                    .map(|l| {
                        refs.extend(l.refs);
                        if l.expression.contains(' ') {
                            format!("({})", l.expression)
                        } else {
                            l.expression
                        }
                    })
                    .collect();
                Some(License { expression: parts.join(" AND "), refs })
            }
        }
    }
}

/// The license a Debian `copyright` file declares, if it is machine-readable (DEP-5: a
/// first paragraph whose `Format:` names the copyright format 1.0): every `Files:`
/// paragraph's license, all of them.
pub fn debian_copyright(text: &str) -> Option<License> {
    let mut paragraphs = paragraphs(text);
    let header = paragraphs.next()?;
    if !header
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("format") && value.contains("copyright-format/1.0"))
    {
        return None;
    }
    let licenses: Vec<License> = paragraphs
        .filter(|p| p.iter().any(|(name, _)| name.eq_ignore_ascii_case("files")))
        .filter_map(|p| {
            // The synopsis is the first line; the rest, the license's text.
            let (_, value) = p.iter().find(|(name, _)| name.eq_ignore_ascii_case("license"))?;
            value.lines().next().map(str::to_string)
        })
        .filter_map(|synopsis| License::from_declaration(&synopsis))
        .collect();
    License::all_of(licenses)
}

/// The license a Python distribution's core metadata (`METADATA`, `PKG-INFO`) declares:
/// `License-Expression` (PEP 639), else the `License` field when it is a name (one short
/// line, not `UNKNOWN`), else the `License ::` classifiers; the first of them that is SPDX
/// identifiers only, else the first that names anything.
pub fn python_metadata(text: &str) -> Option<License> {
    let headers = paragraphs(text).next().unwrap_or_default();
    let field = |name: &'static str| {
        headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
    };
    let mut candidates: Vec<License> = Vec::new();
    candidates.extend(field("License-Expression").filter_map(|e| License::from_declaration(&e)));
    candidates.extend(
        field("License")
            .filter(|l| !l.contains('\n') && l.len() <= 80 && !l.eq_ignore_ascii_case("unknown"))
            .filter_map(|l| License::from_declaration(&l)),
    );
    let classifiers: Vec<License> = field("Classifier")
        .filter_map(|c| {
            let mut parts = c.split("::").map(str::trim);
            (parts.next() == Some("License")).then_some(())?;
            let name = parts.filter(|p| *p != "OSI Approved").last()?.to_string();
            let id = spdx_id(&name).unwrap_or_else(|| license_ref(&name));
            let refs = if id.starts_with("LicenseRef-") {
                BTreeMap::from([(id.clone(), name)])
            } else {
                BTreeMap::new()
            };
            Some(License { expression: id, refs })
        })
        .collect();
    if !classifiers.is_empty() {
        let mut refs = BTreeMap::new();
        let mut ids: Vec<String> = classifiers
            .into_iter()
            .map(|c| {
                refs.extend(c.refs);
                c.expression
            })
            .collect();
        ids.sort();
        ids.dedup();
        candidates.push(License { expression: ids.join(" OR "), refs });
    }
    let first_spdx = candidates.iter().position(License::is_spdx_only);
    match first_spdx {
        Some(i) => Some(candidates.swap_remove(i)),
        None => candidates.into_iter().next(),
    }
}

/// `Name: value` fields of each paragraph (RFC 822 style: continuation lines start with
/// white space and are joined with newlines; a blank line ends a paragraph).
fn paragraphs(text: &str) -> impl Iterator<Item = Vec<(String, String)>> + '_ {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || {
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        lines.peek()?;
        let mut fields: Vec<(String, String)> = Vec::new();
        while let Some(line) = lines.next_if(|l| !l.trim().is_empty()) {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Some(fields)
    })
}

/// `LicenseRef-` and `name` with every character but ASCII letters, digits and `.` as `-`.
fn license_ref(name: &str) -> String {
    let mut id = String::from("LicenseRef-");
    // No dash right after the prefix.
    let mut dash = true;
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            id.push(c);
            dash = false;
        } else if !dash {
            id.push('-');
            dash = true;
        }
    }
    while id.ends_with('-') {
        id.pop();
    }
    if id == "LicenseRef" {
        id.push_str("-unnamed");
    }
    id
}

/// The SPDX identifier `name` stands for, if this module knows it (case-insensitive).
pub fn spdx_id(name: &str) -> Option<String> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    // Debian's GNU names: `GPL-2`, `GPL-2+`, `LGPL-2.1+`, `GFDL-1.3`, also `GPL-2.0+`.
    for family in ["agpl", "lgpl", "gpl", "gfdl"] {
        if let Some(rest) = lower.strip_prefix(family).and_then(|r| r.strip_prefix('-')) {
            let (version, later) = match rest.strip_suffix('+') {
                Some(v) => (v, true),
                None => (rest, false),
            };
            let version = match version {
                "1" | "1.0" => "1.0",
                "2" | "2.0" => "2.0",
                "2.1" => "2.1",
                "3" | "3.0" => "3.0",
                "1.1" if family == "gfdl" => "1.1",
                "1.2" if family == "gfdl" => "1.2",
                "1.3" if family == "gfdl" => "1.3",
                _ => {
                    // Already SPDX (`GPL-2.0-only`, `LGPL-2.1-or-later`)?
                    return KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)).map(|k| k.to_string());
                }
            };
            let valid = match family {
                "agpl" => version == "3.0",
                "lgpl" => matches!(version, "2.0" | "2.1" | "3.0"),
                "gpl" => matches!(version, "1.0" | "2.0" | "3.0"),
                _ => matches!(version, "1.1" | "1.2" | "1.3"),
            };
            if !valid {
                return None;
            }
            let upper = family.to_ascii_uppercase();
            return Some(format!("{upper}-{version}-{}", if later { "or-later" } else { "only" }));
        }
    }
    if let Some(known) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(known.to_string());
    }
    ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map(|(_, id)| id.to_string())
}

/// SPDX identifiers (from the SPDX license list) that packages commonly declare.
const KNOWN: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "curl",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libtiff",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Sleepycat",
    "TCL",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];

/// Other names for SPDX identifiers: Debian's short names, trove classifiers, spellings
/// seen in `License` fields.
const ALIASES: &[(&str, &str)] = &[
    ("Expat", "MIT"),
    ("MIT License", "MIT"),
    ("MIT-style", "MIT"),
    ("Apache", "Apache-2.0"),
    ("Apache 2", "Apache-2.0"),
    ("Apache 2.0", "Apache-2.0"),
    ("Apache-2", "Apache-2.0"),
    ("Apache License 2.0", "Apache-2.0"),
    ("Apache License, Version 2.0", "Apache-2.0"),
    ("Apache License Version 2.0", "Apache-2.0"),
    ("Apache Software License", "Apache-2.0"),
    ("Apache Software License 2.0", "Apache-2.0"),
    ("ASL 2.0", "Apache-2.0"),
    ("BSD-2", "BSD-2-Clause"),
    ("BSD 2-Clause", "BSD-2-Clause"),
    ("BSD-3", "BSD-3-Clause"),
    ("BSD 3-Clause", "BSD-3-Clause"),
    ("3-Clause BSD License", "BSD-3-Clause"),
    ("New BSD License", "BSD-3-Clause"),
    ("Modified BSD License", "BSD-3-Clause"),
    ("BSD-4", "BSD-4-Clause"),
    ("CC0", "CC0-1.0"),
    ("ISC License", "ISC"),
    ("ISC License (ISCL)", "ISC"),
    ("Zlib/libpng", "Zlib"),
    ("zlib/libpng License", "Zlib"),
    ("MPL-2", "MPL-2.0"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("PSF", "PSF-2.0"),
    ("PSF License", "PSF-2.0"),
    ("The Unlicense (Unlicense)", "Unlicense"),
    ("Boost Software License 1.0 (BSL-1.0)", "BSL-1.0"),
    ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
    ("GNU General Public License v2 or later (GPLv2+)", "GPL-2.0-or-later"),
    ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
    ("GNU General Public License v3 or later (GPLv3+)", "GPL-3.0-or-later"),
    ("GNU Lesser General Public License v2 or later (LGPLv2+)", "LGPL-2.0-or-later"),
    ("GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"),
    ("GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"),
    ("GNU Library or Lesser General Public License (LGPL)", "LGPL-2.0-or-later"),
    ("GNU Affero General Public License v3", "AGPL-3.0-only"),
    ("GNU Affero General Public License v3 or later (AGPLv3+)", "AGPL-3.0-or-later"),
    ("Historical Permission Notice and Disclaimer (HPND)", "HPND"),
    ("Universal Permissive License (UPL)", "UPL-1.0"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_become_expressions() {
        let l = License::from_declaration("GPL-2+ or Artistic-2.0").unwrap();
        assert_eq!(l.expression, "GPL-2.0-or-later OR Artistic-2.0");
        assert!(l.is_spdx_only());
        // Debian's `Artistic` is ambiguous (1.0 or Perl's): kept as named.
        let l = License::from_declaration("GPL-1+ or Artistic").unwrap();
        assert_eq!(l.expression, "GPL-1.0-or-later OR LicenseRef-Artistic");
        assert_eq!(License::from_declaration("Expat").unwrap().expression, "MIT");
        assert_eq!(License::from_declaration("Apache License 2.0").unwrap().expression, "Apache-2.0");
        assert_eq!(
            License::from_declaration("LGPL-2.1+, BSD-3-clause").unwrap().expression,
            "LGPL-2.1-or-later AND BSD-3-Clause"
        );
        let odd = License::from_declaration("public-domain and GPL-3").unwrap();
        assert_eq!(odd.expression, "LicenseRef-public-domain AND GPL-3.0-only");
        assert_eq!(odd.refs["LicenseRef-public-domain"], "public-domain");
        assert_eq!(License::from_declaration("GPL-7+").unwrap().expression, "LicenseRef-GPL-7");
        assert!(License::from_declaration("  or  ").is_none());
        assert_eq!(License::from_declaration("(MIT OR Apache-2.0)").unwrap().expression, "MIT OR Apache-2.0");
    }

    #[test]
    fn machine_readable_copyright_files() {
        let text = "Format: https://example.invalid/doc/packaging-manuals/copyright-format/1.0/\n\
Upstream-Name: zlib\n\n\
Files: *\nCopyright: 1995 Jean-loup Gailly\nLicense: Zlib\n\n\
Files: debian/*\nCopyright: 2000 someone\nLicense: GPL-2+\n This program is free software\n .\n more\n\n\
Files: contrib/*\nLicense: Zlib\n\n\
License: GPL-2+\n full text\n";
        let l = debian_copyright(text).unwrap();
        assert_eq!(l.expression, "GPL-2.0-or-later AND Zlib");
        assert!(
            debian_copyright("This is the Debian prepackaged version of foo.\n\nLicense: MIT\n").is_none()
        );
        assert!(debian_copyright("").is_none());
    }

    #[test]
    fn python_metadata_licenses() {
        let m = "Metadata-Version: 2.1\nName: six\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nbody\n";
        assert_eq!(python_metadata(m).unwrap().expression, "MIT");
        let m = "Metadata-Version: 2.4\nName: x\nLicense-Expression: Apache-2.0 OR MIT\n";
        assert_eq!(python_metadata(m).unwrap().expression, "Apache-2.0 OR MIT");
        let m = "Name: torch\nLicense: BSD-3\nClassifier: License :: OSI Approved :: BSD License\n";
        assert_eq!(python_metadata(m).unwrap().expression, "BSD-3-Clause");
        // A license's text is not its name: the classifier is read instead.
        let m = "Name: x\nLicense: Copyright (c) 2020 someone\n        Permission is granted\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(python_metadata(m).unwrap().expression, "MIT");
        let m = "Name: x\nLicense: Proprietary\n";
        assert_eq!(python_metadata(m).unwrap().refs["LicenseRef-Proprietary"], "Proprietary");
        let m = "Name: x\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: BSD License\n";
        assert_eq!(python_metadata(m).unwrap().expression, "LicenseRef-BSD-License");
        assert!(python_metadata("Name: x\nLicense: UNKNOWN\n").is_none());
        assert!(python_metadata("\u{0}garbage").is_none());
    }
}
