//! What the maintainer scripts of a fresh install leave in `/etc` and `/var/lib` besides
//! users, alternatives and certificates, made from the packages' own data as the scripts
//! make it (checked against `mmdebstrap`, which runs them: `tests/parity.rs` in `ops`):
//!
//! - base-files: `/etc/profile`, `/etc/motd`, `/root/.profile` and `.bashrc` from
//!   `/usr/share/base-files`, `/etc/dpkg/origins/default`, the directories of the file
//!   system hierarchy (`/opt`, `/srv`, `/usr/local/*`, ...) and `/var/run -> /run`;
//! - `/etc/nsswitch.conf` (libc-bin, or base-files before bookworm), `/etc/inputrc`
//!   (readline-common), `/etc/environment` and `/etc/security/opasswd` (libpam-modules),
//!   `/etc/subuid`, `/etc/subgid` and `/var/log/faillog` (login), the logs of logins
//!   (`wtmp`, `btmp`, `lastlog`), `/var/lib/python/pythonX.Y_installed` and the local
//!   site directories `/usr/local/lib/pythonX.Y/dist-packages`;
//! - `pam-auth-update --package --force`: `/etc/pam.d/common-*` from the templates in
//!   `/usr/share/pam` and the profiles in `/usr/share/pam-configs`, and its state in
//!   `/var/lib/pam`;
//! - `update-shells` (debianutils since bookworm): `/etc/shells` and
//!   `/var/lib/shells.state` from `/usr/share/debianutils/shells` and `shells.d`;
//! - what dpkg and apt keep beside the status file: `/var/lib/dpkg/arch`, the triggers
//!   database (`triggers/File`, one file per named trigger), the lock files, and apt's
//!   auto-installed marks (`/var/lib/apt/extended_states`).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::configure::{file, Generated, InstalledPackage};

/// The unpacked root, read where a script would read it.
pub(crate) struct Tree<'a> {
    pub root: &'a Path,
}

impl Tree<'_> {
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.join(rel)).ok()
    }

    fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(rel)).is_ok()
    }

    fn is_file(&self, rel: &str) -> bool {
        std::fs::metadata(self.root.join(rel)).is_ok_and(|m| m.is_file())
    }

    fn is_dir(&self, rel: &str) -> bool {
        std::fs::metadata(self.root.join(rel)).is_ok_and(|m| m.is_dir())
    }

    fn is_symlink(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.file_type().is_symlink())
    }

    /// The names in a directory, in byte order (as `LC_COLLATE=C` globs them).
    fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(rel))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `cp -p`: the file's content with its mode (owner root, as packages ship these).
    fn copy(&self, from: &str, to: &str) -> Option<Generated> {
        let meta = std::fs::metadata(self.root.join(from)).ok()?;
        let content = self.read(from)?;
        Some(Generated::File {
            path: to.to_string(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid().into(),
            gid: meta.gid().into(),
            content,
        })
    }

    /// `dpkg-realpath`: an absolute path with every symlink inside the root followed.
    fn realpath(&self, path: &str) -> String {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(part);
            let rel = resolved.join("/");
            if let Ok(target) = std::fs::read_link(self.root.join(&rel)) {
                hops += 1;
                if hops > 40 {
                    break;
                }
                resolved.pop();
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
        format!("/{}", resolved.join("/"))
    }
}

fn empty(path: &str, mode: u32) -> Generated {
    file(path, mode, Vec::new())
}

fn dir(path: &str, mode: u32, gid: u64) -> Generated {
    Generated::Dir { path: path.to_string(), mode, uid: 0, gid }
}

/// Everything listed in the module documentation, for a fresh install of `installed`.
/// `group_id` maps group names to ids (`mail`, `utmp`); `manual` names the packages that
/// were asked for rather than pulled in.
pub(crate) fn fresh_install(
    tree: &Tree<'_>,
    installed: &[InstalledPackage],
    group_id: &dyn Fn(&str) -> Option<u64>,
    manual: &BTreeSet<String>,
    configured: &[Generated],
) -> Vec<Generated> {
    let names: BTreeSet<&str> = installed.iter().map(|p| p.locked.name.as_str()).collect();
    let mut out = Vec::new();
    if names.contains("base-files") {
        out.extend(base_files(tree, group_id));
    }
    let defaults: [(&str, &str, &str); 3] = [
        ("libc-bin", "usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),
        ("base-files", "usr/share/base-files/nsswitch.conf", "etc/nsswitch.conf"),
        ("readline-common", "usr/share/readline/inputrc", "etc/inputrc"),
    ];
    for (package, from, to) in defaults {
        if names.contains(package) && !tree.is_file(to) && !out.iter().any(|g| generated_path(g) == to) {
            out.extend(tree.copy(from, to));
        }
    }
    if names.contains("libpam-modules") {
        for (path, mode) in [("etc/security/opasswd", 0o600), ("etc/environment", 0o644)] {
            if !tree.is_file(path) {
                out.push(empty(path, mode));
            }
        }
    }
    if names.contains("login") {
        if !tree.is_file("var/log/faillog") {
            out.push(empty("var/log/faillog", 0o644));
        }
        for path in ["etc/subuid", "etc/subgid"] {
            if !tree.exists(path) {
                out.push(empty(path, 0o644));
            }
        }
    }
    if names.contains("passwd") {
        // `shadowconfig on` (pwconv, grpconv) takes the password files' lock.
        out.push(empty("etc/.pwd.lock", 0o600));
    }
    let pythons: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix("-minimal"))
        .filter(|v| v.strip_prefix("python3.").is_some_and(|m| m.parse::<u32>().is_ok()))
        .collect();
    if !pythons.is_empty() {
        out.push(dir("var/lib/python", 0o755, 0));
        for version in pythons {
            // The preinst remembers the newly installed runtime; the postinst makes the
            // site directory of local installs (root's, unless /usr/local is staff's).
            out.push(empty(&format!("var/lib/python/{version}_installed"), 0o644));
            let (mode, gid) = match tree.exists("etc/staff-group-for-usr-local") {
                true => (0o2755, group_id("staff").unwrap_or(50)),
                false => (0o755, 0),
            };
            for path in [format!("usr/local/lib/{version}"), format!("usr/local/lib/{version}/dist-packages")]
            {
                if !tree.exists(&path) {
                    out.push(dir(&path, mode, gid));
                }
            }
        }
    }
    if names.contains("fontconfig-config") {
        // debconf's defaults: slight hinting, no bitmap fonts; and the local fonts directory.
        for conf in ["10-hinting-slight.conf", "70-no-bitmaps.conf"] {
            let (avail, link) =
                (format!("usr/share/fontconfig/conf.avail/{conf}"), format!("etc/fonts/conf.d/{conf}"));
            if tree.exists(&avail) && !tree.exists(&link) {
                out.push(Generated::Symlink { path: link, target: format!("/{avail}") });
            }
        }
        if !tree.is_dir("usr/local/share/fonts") {
            out.push(dir("usr/local/share/fonts", 0o2775, group_id("staff").unwrap_or(50)));
        }
    }
    if names.contains("ucf") && !tree.exists("var/lib/ucf/cache") {
        // ucf keeps the copies of the files it manages there.
        out.push(dir("var/lib/ucf/cache", 0o755, 0));
    }
    if names.contains("coreutils") && !tree.exists("usr/bin/touch") && tree.is_file("bin/touch") {
        // On a root that is not merged-/usr, coreutils' postinst links the old path.
        out.push(Generated::Symlink { path: "usr/bin/touch".into(), target: "/bin/touch".into() });
    }
    if names.contains("libpam-runtime") {
        out.extend(pam_auth_update(tree));
    }
    if names.contains("debianutils") && tree.is_file("usr/sbin/update-shells") {
        out.extend(update_shells(tree));
    }
    literal_creations(tree, installed, configured, &mut out);
    out.extend(dpkg_state(installed));
    if names.contains("apt") {
        out.push(extended_states(installed, manual));
    }
    out
}

/// What postinsts make with literal paths under /etc and /var/lib on a fresh install
/// (`crate::scripts::literal_creations`: configuration files from a here-document or a copy
/// of one the package ships, state directories and empty files), where nothing is there.
fn literal_creations(
    tree: &Tree<'_>,
    installed: &[InstalledPackage],
    configured: &[Generated],
    out: &mut Vec<Generated>,
) {
    let wanted = |path: &str| {
        (path.starts_with("/etc/") || (path.starts_with("/var/lib/") && !path.starts_with("/var/lib/dpkg/")))
            // ca-certificates-java's flags for its trigger, which consumes them.
            && !path.starts_with("/var/lib/ca-certificates-java/")
            && !path.contains("dpkg-")
            && !path.contains("ucf-")
            && !path.ends_with('~')
    };
    for (p, script) in installed.iter().filter_map(|p| Some((p, p.control.get("postinst")?))) {
        if script.starts_with(b"\x7fELF") {
            continue;
        }
        let _ = p;
        let text = String::from_utf8_lossy(script);
        for creation in crate::scripts::literal_creations(&text) {
            use crate::scripts::Creation;
            let target = match &creation {
                Creation::Dir { path, .. }
                | Creation::Touch { path }
                | Creation::Mode { path, .. }
                | Creation::Text { path, .. } => path,
                Creation::Copy { to, .. } => to,
            };
            if !wanted(target) {
                continue;
            }
            let rel = target.trim_start_matches('/').trim_end_matches('/').to_string();
            let made = out.iter().position(|g| generated_path(g) == rel);
            if let Creation::Mode { mode, .. } = &creation {
                if let Some(Generated::File { mode: m, .. } | Generated::Dir { mode: m, .. }) =
                    made.map(|i| &mut out[i])
                {
                    *m = *mode;
                }
                continue;
            }
            // What configuration made its own way (accounts, certificates) stays.
            if made.is_some() || tree.exists(&rel) || configured.iter().any(|g| generated_path(g) == rel) {
                continue;
            }
            // Its directory, as `mkdir -p` or an earlier command of the script made it.
            let mut parent = rel.as_str();
            let mut parents = Vec::new();
            while let Some((up, _)) = parent.rsplit_once('/') {
                if tree.exists(up) || out.iter().any(|g| generated_path(g) == up) {
                    break;
                }
                parents.push(dir(up, 0o755, 0));
                parent = up;
            }
            out.extend(parents.into_iter().rev());
            match creation {
                Creation::Dir { mode, .. } => out.push(dir(&rel, mode.unwrap_or(0o755), 0)),
                Creation::Touch { .. } => out.push(empty(&rel, 0o644)),
                Creation::Text { text, .. } => out.push(file(&rel, 0o644, text.into_bytes())),
                Creation::Copy { from, .. } => {
                    if let Some(Generated::File { mode, content, .. }) =
                        tree.copy(from.trim_start_matches('/'), &rel)
                    {
                        out.push(Generated::File { path: rel, mode: mode & 0o755, uid: 0, gid: 0, content });
                    }
                }
                Creation::Mode { .. } => {}
            }
        }
    }
}

fn generated_path(g: &Generated) -> &str {
    match g {
        Generated::File { path, .. }
        | Generated::Symlink { path, .. }
        | Generated::Dir { path, .. }
        | Generated::Owner { path, .. } => path,
    }
}

/// base-files' `postinst configure` with no previous version.
fn base_files(tree: &Tree<'_>, group_id: &dyn Fn(&str) -> Option<u64>) -> Vec<Generated> {
    let mut out = Vec::new();
    if !tree.exists("etc/dpkg/origins/default") && tree.exists("etc/dpkg/origins/debian") {
        out.push(Generated::Symlink { path: "etc/dpkg/origins/default".into(), target: "debian".into() });
    }
    for (from, to) in [
        ("dot.profile", "root/.profile"),
        ("dot.bashrc", "root/.bashrc"),
        ("profile", "etc/profile"),
        ("motd", "etc/motd"),
        ("nsswitch.conf", "etc/nsswitch.conf"),
    ] {
        if !tree.is_file(to) {
            out.extend(tree.copy(&format!("usr/share/base-files/{from}"), to));
        }
    }
    let mail = group_id("mail").unwrap_or(8);
    for (path, mode, gid) in [
        ("mnt", 0o755, 0),
        ("srv", 0o755, 0),
        ("opt", 0o755, 0),
        ("etc/opt", 0o755, 0),
        ("var/opt", 0o755, 0),
        ("media", 0o755, 0),
        ("var/mail", 0o2775, mail),
    ] {
        if !tree.is_dir(path) {
            out.push(dir(path, mode, gid));
        }
    }
    if !tree.is_symlink("var/spool/mail") {
        out.push(Generated::Symlink { path: "var/spool/mail".into(), target: "../mail".into() });
    }
    if !tree.is_dir("run/lock") {
        out.push(dir("run/lock", 0o1777, 0));
    }
    for (path, target) in [("var/run", "/run"), ("var/lock", "/run/lock")] {
        if !tree.is_symlink(path) {
            out.push(Generated::Symlink { path: path.into(), target: target.into() });
        }
    }
    // `/usr/local` stays root's unless `/etc/staff-group-for-usr-local` asks for staff.
    if !tree.exists("etc/staff-group-for-usr-local") {
        for sub in ["", "/share", "/share/man", "/bin", "/games", "/lib", "/include", "/sbin", "/src", "/etc"]
        {
            let path = format!("usr/local{sub}");
            if !tree.is_dir(&path) {
                out.push(dir(&path, 0o755, 0));
            }
        }
    }
    out.push(Generated::Symlink { path: "usr/local/man".into(), target: "share/man".into() });
    let utmp = group_id("utmp").unwrap_or(43);
    for (path, mode) in [("var/log/wtmp", 0o664), ("var/log/btmp", 0o660), ("var/log/lastlog", 0o664)] {
        let content = tree.read(path).unwrap_or_default();
        out.push(Generated::File { path: path.into(), mode, uid: 0, gid: utmp, content });
    }
    if tree.is_dir("usr/share/info") && !tree.is_file("usr/info/dir") && !tree.is_file("usr/share/info/dir") {
        if let Some(content) = tree.read("usr/share/base-files/info.dir") {
            out.push(file("usr/share/info/dir", 0o644, content));
        }
    }
    out
}

/// The five stacks pam-auth-update manages, in its order.
const PAM_TYPES: [&str; 5] = ["auth", "account", "password", "session", "session-noninteractive"];

/// One profile of `/usr/share/pam-configs`, as pam-auth-update parses it.
#[derive(Debug, Default)]
struct PamProfile {
    name: String,
    fields: BTreeMap<String, String>,
    conflicts: BTreeSet<String>,
}

impl PamProfile {
    fn parse(name: &str, text: &str) -> Option<PamProfile> {
        let mut profile = PamProfile { name: name.to_string(), ..PamProfile::default() };
        let mut field: Option<String> = None;
        let mut disabled = false;
        for line in text.split_inclusive('\n') {
            let header = line
                .split_once(':')
                .filter(|(n, rest)| {
                    !n.is_empty()
                        && !n.chars().any(char::is_whitespace)
                        && rest.starts_with(|c: char| c.is_whitespace())
                })
                .map(|(n, rest)| {
                    (n.strip_suffix("-Final").unwrap_or(n).to_string(), rest.trim().to_string())
                });
            if let Some((name, value)) = header {
                if name == "Conflicts" {
                    profile.conflicts.extend(value.split(", ").map(str::to_string));
                } else {
                    profile.fields.insert(name.clone(), value);
                }
                field = Some(name);
                continue;
            }
            let Some(name) = &field else { continue };
            let text = line.trim();
            let value = profile.fields.entry(name.clone()).or_default();
            if !text.is_empty() {
                value.push('\n');
                value.push_str(text);
            }
            disabled |= value.contains("pam_tally");
            *value = value.trim_start_matches(['\n', ' ', '\t']).to_string();
        }
        if disabled {
            return None;
        }
        if !profile.fields.contains_key("Session-Interactive-Only") {
            for suffix in ["-Type", "", "-Initial"] {
                if let Some(v) = profile.fields.get(&format!("Session{suffix}")).cloned() {
                    profile.fields.insert(format!("Session-noninteractive{suffix}"), v);
                }
            }
        }
        Some(profile)
    }

    fn priority(&self) -> i64 {
        self.fields.get("Priority").and_then(|p| p.trim().parse().ok()).unwrap_or(0)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The lines for one stack: `-Initial` for the first module of a block.
    fn lines(&self, uctype: &str, position: usize) -> Option<&str> {
        if position == 0 {
            if let Some(initial) = self.get(&format!("{uctype}-Initial")) {
                return Some(initial);
            }
        }
        self.get(uctype)
    }
}

fn ucfirst(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// One profile line as pam-auth-update writes it: `end` becomes the number of lines left.
fn merge_line(line: &str, count: usize) -> Option<String> {
    // ^((\[[^]]+\]|\w+)\s+\S+)\s*(.*)
    let control_end = if line.starts_with('[') {
        line.find(']')? + 1
    } else {
        line.find(|c: char| !(c.is_alphanumeric() || c == '_'))?
    };
    if control_end == 0 {
        return None;
    }
    let rest = &line[control_end..];
    let ws = rest.len() - rest.trim_start().len();
    if ws == 0 {
        return None;
    }
    let after_ws = &rest[ws..];
    let module_len = after_ws.find(char::is_whitespace).unwrap_or(after_ws.len());
    if module_len == 0 {
        return None;
    }
    let modline = &line[..control_end + ws + module_len];
    let options: Vec<&str> = after_ws[module_len..].split_whitespace().collect();
    Some(format!("{} {}\n", modline.replace("end", &count.to_string()), options.join(" ")))
}

fn pam_auth_update(tree: &Tree<'_>) -> Vec<Generated> {
    let mut profiles: Vec<PamProfile> = tree
        .list("usr/share/pam-configs")
        .into_iter()
        .filter(|n| !(n.ends_with('~') || n.len() > 1 && n.starts_with('#') && n.ends_with('#')))
        .filter_map(|n| {
            let text =
                String::from_utf8_lossy(&tree.read(&format!("usr/share/pam-configs/{n}"))?).into_owned();
            PamProfile::parse(&n, &text)
        })
        .collect();
    // By priority, then name, both descending.
    profiles.sort_by(|a, b| b.priority().cmp(&a.priority()).then_with(|| b.name.cmp(&a.name)));
    let mut enabled: Vec<&PamProfile> =
        profiles.iter().filter(|p| p.get("Default").is_some_and(|d| d == "yes")).collect();
    let conflicting: BTreeSet<String> = enabled
        .iter()
        .flat_map(|p| p.conflicts.iter().filter(|c| enabled.iter().any(|e| &e.name == *c)).cloned())
        .collect();
    enabled.retain(|p| !conflicting.contains(&p.name));

    let mut out = vec![dir("var/lib/pam", 0o755, 0)];
    let seen: String = profiles.iter().map(|p| format!("{}\n", p.name)).collect();
    out.push(file("var/lib/pam/seen", 0o644, seen.into_bytes()));
    for kind in PAM_TYPES {
        let Some(template) = tree.read(&format!("usr/share/pam/common-{kind}")) else { continue };
        let template = String::from_utf8_lossy(&template);
        let uctype = ucfirst(kind);
        let short = kind.trim_end_matches("-noninteractive");
        let block = |val: &str| -> Vec<&str> {
            let mut lines = Vec::new();
            let mut position = 0;
            for p in &enabled {
                if p.get(&format!("{uctype}-Type")) != Some(val) {
                    continue;
                }
                if let Some(text) = p.lines(&uctype, position) {
                    lines.extend(text.split('\n').filter(|l| !l.is_empty()));
                }
                position += 1;
            }
            lines
        };
        let mut text = String::new();
        let mut state = 0;
        for line in template.split_inclusive('\n') {
            if state == 1 {
                if line.starts_with("# here's the fallback if no module succeeds") {
                    text.push_str(line);
                    state = 2;
                }
                continue;
            }
            if state == 3 {
                if line.starts_with("# end of pam-auth-update config") {
                    text.push_str(line);
                    state = 4;
                }
                continue;
            }
            text.push_str(line);
            let (pattern, val) = match state {
                0 => ("# here are the per-package modules (the \"Primary\" block)", "Primary"),
                2 => ("# and here are more per-package modules (the \"Additional\" block)", "Additional"),
                _ => continue,
            };
            if !line.starts_with(pattern) {
                continue;
            }
            let lines = block(val);
            let mut count = lines.len();
            if val == "Additional" {
                count = count.saturating_sub(1);
            }
            if val == "Primary" && lines.is_empty() {
                text.push_str(&format!("{short}\t[default=1]\t\t\tpam_permit.so\n"));
            }
            for line in lines {
                if let Some(merged) = merge_line(line, count) {
                    text.push_str(&format!("{short}\t{merged}"));
                }
                count = count.saturating_sub(1);
            }
            state += 1;
        }
        if state < 4 {
            tracing::warn!("libpam-runtime: /usr/share/pam/common-{kind} lacks pam-auth-update's markers");
            continue;
        }
        out.push(file(&format!("etc/pam.d/common-{kind}"), 0o644, text.into_bytes()));
        // The state: the modules of each block as the profiles give them.
        let mut saved = String::new();
        for (primary, null) in [(true, true), (false, false)] {
            let mut position = 0;
            for p in &enabled {
                let Some(t) = p.get(&format!("{uctype}-Type")) else { continue };
                if (t == "Additional") == primary {
                    continue;
                }
                if let Some(lines) = p.lines(&uctype, position) {
                    saved.push_str(&format!("Module: {}\n{lines}\n", p.name));
                }
                position += 1;
            }
            if null && position == 0 {
                saved.push_str("Module: null\n[default=1]\t\t\tpam_permit.so\n");
            }
        }
        out.push(file(&format!("var/lib/pam/{kind}"), 0o644, saved.into_bytes()));
    }
    out
}

/// debianutils' `postinst`: `/etc/shells` from its template, then `update-shells`.
fn update_shells(tree: &Tree<'_>) -> Vec<Generated> {
    let template =
        String::from_utf8_lossy(&tree.read("usr/share/debianutils/shells").unwrap_or_default()).into_owned();
    let source = match tree.read("etc/shells") {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => template.clone(),
    };
    let mut package_shells: Vec<String> = Vec::new();
    let mut texts = vec![template];
    for name in tree.list("usr/share/debianutils/shells.d") {
        let rel = format!("usr/share/debianutils/shells.d/{name}");
        if tree.is_file(&rel) {
            texts.push(String::from_utf8_lossy(&tree.read(&rel).unwrap_or_default()).into_owned());
        }
    }
    for text in &texts {
        for line in text.lines() {
            let shell = line.split('#').next().unwrap_or("");
            if shell.is_empty() {
                continue;
            }
            package_shells.push(shell.to_string());
            let (parent, base) = shell.rsplit_once('/').unwrap_or(("", shell));
            let real = format!(
                "{}/{base}",
                tree.realpath(if parent.is_empty() { "." } else { parent }).trim_end_matches('/')
            );
            if real != shell {
                package_shells.push(real);
            }
        }
    }
    let mut etc = String::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for line in source.lines() {
        let shell = line.split('#').next().unwrap_or("");
        // No state yet: every shell of the file stays, once.
        if shell.is_empty() || !listed.contains(shell) {
            etc.push_str(line);
            etc.push('\n');
            listed.insert(shell.to_string());
        }
    }
    let mut state = String::new();
    for shell in &package_shells {
        state.push_str(shell);
        state.push('\n');
        if !listed.contains(shell) {
            etc.push_str(shell);
            etc.push('\n');
        }
    }
    vec![file("etc/shells", 0o644, etc.into_bytes()), file("var/lib/shells.state", 0o644, state.into_bytes())]
}

/// The name dpkg gives a package in its database: `NAME:ARCH` for `Multi-Arch: same`.
pub(crate) fn database_name(p: &InstalledPackage) -> String {
    let same = crate::deb822::single_paragraph(&p.control.control)
        .ok()
        .and_then(|c| c.get("Multi-Arch").map(|v| v == "same"))
        .unwrap_or(false);
    if same {
        format!("{}:{}", p.locked.name, p.locked.arch)
    } else {
        p.locked.name.clone()
    }
}

/// `/var/lib/dpkg/arch`, the triggers database and the lock files.
fn dpkg_state(installed: &[InstalledPackage]) -> Vec<Generated> {
    let mut out = Vec::new();
    if let Some(native) = installed.iter().map(|p| p.locked.arch.as_str()).find(|a| *a != "all") {
        out.push(file("var/lib/dpkg/arch", 0o644, format!("{native}\n").into_bytes()));
    }
    let mut file_triggers = String::new();
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for p in installed {
        let Some(triggers) = p.control.get("triggers") else { continue };
        let name = database_name(p);
        for line in String::from_utf8_lossy(triggers).lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            let (Some(directive), Some(trigger)) = (words.next(), words.next()) else { continue };
            let who = match directive {
                "interest" | "interest-await" => name.clone(),
                "interest-noawait" => format!("{name}/noawait"),
                _ => continue,
            };
            if trigger.starts_with('/') {
                file_triggers.push_str(&format!("{trigger} {who}\n"));
            } else {
                named.entry(trigger.to_string()).or_default().push_str(&format!("{who}\n"));
            }
        }
    }
    if !file_triggers.is_empty() {
        out.push(file("var/lib/dpkg/triggers/File", 0o644, file_triggers.into_bytes()));
    }
    for (trigger, who) in named {
        out.push(file(&format!("var/lib/dpkg/triggers/{trigger}"), 0o644, who.into_bytes()));
    }
    out.push(empty("var/lib/dpkg/triggers/Unincorp", 0o644));
    out.push(empty("var/lib/dpkg/triggers/Lock", 0o600));
    out.push(empty("var/lib/dpkg/lock", 0o640));
    out.push(empty("var/lib/dpkg/lock-frontend", 0o640));
    out
}

/// apt's auto-installed marks: what was neither asked for, nor essential (with what
/// essential packages depend on), nor `Priority: required` (with apt), as mmdebstrap
/// and debootstrap install them.
fn extended_states(installed: &[InstalledPackage], manual: &BTreeSet<String>) -> Generated {
    let control: BTreeMap<&str, crate::deb822::Paragraph<'_>> = installed
        .iter()
        .filter_map(|p| {
            Some((p.locked.name.as_str(), crate::deb822::single_paragraph(&p.control.control).ok()?))
        })
        .collect();
    let mut provides: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, c) in &control {
        provides.entry(name.to_string()).or_default().push(name);
        for rel in c.get("Provides").unwrap_or("").split(',') {
            let virt = rel.trim().split([' ', '(', ':']).next().unwrap_or("");
            if !virt.is_empty() {
                provides.entry(virt.to_string()).or_default().push(name);
            }
        }
    }
    let field = |name: &str, key: &str| control.get(name).and_then(|c| c.get(key)).map(str::to_string);
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&str> = Vec::new();
    for p in installed {
        let name = p.locked.name.as_str();
        let essential = field(name, "Essential").is_some_and(|e| e == "yes");
        let required = field(name, "Priority").is_some_and(|e| e == "required");
        if essential {
            queue.push(name);
        }
        if essential || required || name == "apt" || manual.contains(name) {
            kept.insert(name);
        }
    }
    // What essential packages depend on is installed with them, by dpkg, unmarked.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name) {
            continue;
        }
        kept.insert(name);
        for key in ["Pre-Depends", "Depends"] {
            for group in field(name, key).unwrap_or_default().split(',') {
                let chosen = group.split('|').find_map(|alt| {
                    let dep = alt.trim().split([' ', '(', ':']).next().unwrap_or("");
                    provides.get(dep).and_then(|v| v.first().copied())
                });
                if let Some(dep) = chosen {
                    queue.push(dep);
                }
            }
        }
    }
    // apt names `Architecture: all` packages by the native architecture.
    let native = installed.iter().map(|p| p.locked.arch.as_str()).find(|a| *a != "all").unwrap_or("all");
    let mut text = String::new();
    for p in installed {
        if !kept.contains(p.locked.name.as_str()) {
            let arch = if p.locked.arch == "all" { native } else { p.locked.arch.as_str() };
            text.push_str(&format!(
                "Package: {}\nArchitecture: {arch}\nAuto-Installed: 1\n\n",
                p.locked.name
            ));
        }
    }
    file("var/lib/apt/extended_states", 0o644, text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_lines_merge_as_pam_auth_update_writes_them() {
        assert_eq!(
            merge_line("[success=end default=ignore]\tpam_unix.so nullok", 1).as_deref(),
            Some("[success=1 default=ignore]\tpam_unix.so nullok\n")
        );
        assert_eq!(merge_line("required\tpam_unix.so", 0).as_deref(), Some("required\tpam_unix.so \n"));
        assert_eq!(merge_line("nonsense", 0), None);
    }

    #[test]
    fn profiles_parse_fields_and_continuations() {
        let text = "Name: Unix authentication\nDefault: yes\nPriority: 256\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_unix.so nullok try_first_pass\nSession-Type: Additional\nSession:\n\trequired\tpam_unix.so\n";
        let p = PamProfile::parse("unix", text).unwrap();
        assert_eq!(p.priority(), 256);
        assert_eq!(p.get("Auth"), Some("[success=end default=ignore]\tpam_unix.so nullok try_first_pass"));
        assert_eq!(p.get("Session-noninteractive-Type"), Some("Additional"));
        assert!(PamProfile::parse("tally", "Auth:\n\trequired pam_tally.so\n").is_none());
    }
}
