//! `entry_points.txt`: console and GUI scripts, and the launchers written for them.

/// A script entry point: `name = module:attribute [extras]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptEntryPoint {
    /// The script's file name in the scripts directory.
    pub name: String,
    /// The dotted module to import.
    pub module: String,
    /// The dotted attribute of the module to call.
    pub attribute: String,
}

impl ScriptEntryPoint {
    /// The launcher script: imports the module and exits with the callable's return value.
    pub(crate) fn launcher(&self, python: &str) -> String {
        let head = self.attribute.split('.').next().unwrap_or(&self.attribute);
        format!(
            "#!{python}\n\
             # -*- coding: utf-8 -*-\n\
             # Launcher for the entry point {name} = {module}:{attribute}, written by marqo-base.\n\
             import sys\n\
             from {module} import {head}\n\
             if __name__ == \"__main__\":\n    \
             sys.exit({attribute}())\n",
            name = self.name,
            module = self.module,
            attribute = self.attribute,
        )
    }
}

/// Reads the `console_scripts` and `gui_scripts` sections of an `entry_points.txt`.
///
/// Names must be plain file names and targets dotted Python identifiers, since both end up
/// in a file path and in generated code; anything else is refused with a reason.
pub(crate) fn parse_script_entry_points(text: &str) -> Result<Vec<ScriptEntryPoint>, String> {
    let mut scripts = Vec::new();
    let mut in_scripts = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            in_scripts = matches!(section.trim(), "console_scripts" | "gui_scripts");
            continue;
        }
        if !in_scripts {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| format!("`{line}` is not `name = value`"))?;
        let name = name.trim();
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(format!("script name `{name}` is not a file name"));
        }
        // Extras (`module:attr [extra]`) only matter to a resolver.
        let target = value.split('[').next().unwrap_or(value).trim();
        let (module, attribute) = target
            .split_once(':')
            .ok_or_else(|| format!("entry point `{name} = {target}` has no `:attribute`"))?;
        let (module, attribute) = (module.trim(), attribute.trim());
        if !is_dotted_identifier(module) || !is_dotted_identifier(attribute) {
            return Err(format!("entry point `{name} = {target}` is not `module:attribute`"));
        }
        scripts.push(ScriptEntryPoint {
            name: name.to_string(),
            module: module.to_string(),
            attribute: attribute.to_string(),
        });
    }
    Ok(scripts)
}

/// Whether `value` is `ident(.ident)*` with ASCII identifiers.
fn is_dotted_identifier(value: &str) -> bool {
    value.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_console_and_gui_scripts_only() {
        let text =
            "[console_scripts]\nfoo = foo.cli:main [extra]\n# comment\n\n[gui_scripts]\nbar=bar:App.run\n\
                    [pytest11]\nplugin = foo.plugin\n";
        let scripts = parse_script_entry_points(text).unwrap();
        assert_eq!(scripts.len(), 2);
        assert_eq!(scripts[0].module, "foo.cli");
        assert_eq!(scripts[0].attribute, "main");
        assert_eq!(scripts[1].attribute, "App.run");
        let launcher = scripts[1].launcher("/usr/bin/python3.9");
        assert!(launcher.starts_with("#!/usr/bin/python3.9\n"));
        assert!(launcher.contains("from bar import App\n"));
        assert!(launcher.contains("sys.exit(App.run())\n"));
    }

    #[test]
    fn refuses_paths_and_code_in_entry_points() {
        assert!(parse_script_entry_points("[console_scripts]\n../x = a:b\n").is_err());
        assert!(parse_script_entry_points("[console_scripts]\nx = a:b(); import os\n").is_err());
        assert!(parse_script_entry_points("[console_scripts]\nx = a\n").is_err());
    }
}
