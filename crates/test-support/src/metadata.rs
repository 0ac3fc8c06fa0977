//! Core metadata shared by wheels and sdists, and its `METADATA`/`PKG-INFO` rendering.

/// What a published file declares and how the index lists it.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub name: String,
    pub version: String,
    pub requires: Vec<String>,
    pub requires_python: Option<String>,
    /// `(extra, requirements)` in declaration order.
    pub extras: Vec<(String, Vec<String>)>,
    pub upload_time: Option<String>,
    pub yanked: Option<String>,
    /// Other fields (`License`, `Classifier`), written after `Version` in this order.
    pub fields: Vec<(String, String)>,
}

/// The upload time JSON pages show for files published without [`crate::Wheel::upload_time`].
pub const DEFAULT_UPLOAD_TIME: &str = "2020-01-01T00:00:00Z";

impl Common {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            requires: Vec::new(),
            requires_python: None,
            extras: Vec::new(),
            // Real JSON indexes give every file an upload time (PEP 700); HTML pages never do.
            upload_time: Some(DEFAULT_UPLOAD_TIME.to_string()),
            yanked: None,
            fields: Vec::new(),
        }
    }

    /// Renders core metadata. Fields named in `dynamic` are left out and listed as `Dynamic:`
    /// (only meaningful for metadata 2.2+); `more_requires` are appended to `Requires-Dist`.
    pub fn render(&self, metadata_version: &str, dynamic: &[String], more_requires: &[String]) -> String {
        let is_dynamic = |field: &str| dynamic.iter().any(|d| d.eq_ignore_ascii_case(field));
        let mut out =
            format!("Metadata-Version: {metadata_version}\nName: {}\nVersion: {}\n", self.name, self.version);
        for (name, value) in &self.fields {
            out.push_str(&format!("{name}: {value}\n"));
        }
        for field in dynamic {
            out.push_str(&format!("Dynamic: {field}\n"));
        }
        if let Some(rp) = self.requires_python.as_ref().filter(|_| !is_dynamic("Requires-Python")) {
            out.push_str(&format!("Requires-Python: {rp}\n"));
        }
        if !is_dynamic("Provides-Extra") {
            for (extra, _) in &self.extras {
                out.push_str(&format!("Provides-Extra: {extra}\n"));
            }
        }
        if !is_dynamic("Requires-Dist") {
            for req in &self.requires {
                out.push_str(&format!("Requires-Dist: {req}\n"));
            }
            for (extra, reqs) in &self.extras {
                for req in reqs {
                    out.push_str(&format!("Requires-Dist: {}\n", with_extra_marker(req, extra)));
                }
            }
        }
        for req in more_requires {
            out.push_str(&format!("Requires-Dist: {req}\n"));
        }
        out
    }
}

/// Adds `extra == "<extra>"` to a requirement, keeping any marker it already has.
fn with_extra_marker(req: &str, extra: &str) -> String {
    match req.split_once(';') {
        Some((spec, marker)) => format!("{}; ({}) and extra == \"{extra}\"", spec.trim_end(), marker.trim()),
        None => format!("{req}; extra == \"{extra}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_extras_and_dynamic_fields() {
        let mut c = Common::new("foo", "1.0");
        c.requires.push("bar>=1".into());
        c.requires_python = Some(">=3.8".into());
        c.extras.push(("cli".into(), vec!["click>=8".into(), "rich; python_version < '3.9'".into()]));
        assert_eq!(
            c.render("2.1", &[], &[]),
            "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\nRequires-Python: >=3.8\n\
             Provides-Extra: cli\nRequires-Dist: bar>=1\nRequires-Dist: click>=8; extra == \"cli\"\n\
             Requires-Dist: rich; (python_version < '3.9') and extra == \"cli\"\n"
        );
        let rendered = c.render("2.2", &["Requires-Dist".into()], &["x".into()]);
        assert!(rendered.contains("Dynamic: Requires-Dist\n"));
        assert!(!rendered.contains("bar>=1"));
        assert!(rendered.ends_with("Requires-Dist: x\n"));
    }
}
