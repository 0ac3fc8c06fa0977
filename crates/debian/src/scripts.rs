//! What the packages' `preinst` and `postinst` scripts do, set against what
//! [`crate::configure`] did: a list of their actions, each replicated, not replicated, not
//! needed in a container, or nothing to do on a fresh install.
//!
//! The scripts are read, not run: each is split into simple commands as `sh` would (quotes,
//! `\` continuations, comments, here-documents, `;` `&&` `||` `|` and command substitutions),
//! and every command that changes the system is an action: Debian's helpers (`adduser`,
//! `update-alternatives`, `dpkg-statoverride`, `ldconfig`, `update-ca-certificates`,
//! `dpkg-trigger`, `ucf`, `py3compile`, ...), service management (`systemctl`,
//! `deb-systemd-helper`, `invoke-rc.d`, ...), file commands (`mkdir`, `ln`, `cp`, `mv`, `rm`,
//! `chmod`, `chown`, ...) and writes through `>` to a file. Variables assigned a literal once
//! in the script are expanded; anything else that is not literal is unknown.
//!
//! An action counts as replicated only when its effect is in the configured root: the user
//! is in `/etc/passwd`, the alternative's choice in `/var/lib/dpkg/alternatives/NAME`, the
//! link or file at its path among what configuration wrote, the mode the root's file has.
//! Control flow is not followed: an action in a branch a fresh install never takes is listed
//! like any other, unless its effect shows it has nothing to do (removing a path no package
//! ships, moving a file that is not there).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::configure::{Generated, InstalledPackage};
use crate::unpack::RootWriter;

/// What became of one action of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Configuration did what it does.
    Replicated,
    /// Its effect is not in the image.
    NotReplicated,
    /// Service and boot management, which a container without an init system does not use.
    NotNeededInContainer,
    /// It only acts on upgrades or removals, or on something a fresh install does not have.
    NothingOnFreshInstall,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Replicated => "replicated",
            Outcome::NotReplicated => "not replicated",
            Outcome::NotNeededInContainer => "not needed in a container",
            Outcome::NothingOnFreshInstall => "nothing to do on a fresh install",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Replicated,
            Outcome::NotReplicated,
            Outcome::NotNeededInContainer,
            Outcome::NothingOnFreshInstall,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One action of a maintainer script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptAction {
    /// The package.
    pub package: String,
    /// `preinst` or `postinst`.
    pub script: String,
    /// The line it starts on.
    pub line: usize,
    /// The command as written (white space collapsed, long ones cut).
    pub command: String,
    /// What became of it.
    pub outcome: Outcome,
    /// Why: the evidence of a replicated action, what a missing one would have done.
    pub note: String,
}

/// Every action of every package's `preinst` and `postinst`, in package order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptReport {
    pub actions: Vec<ScriptAction>,
}

const FORMAT: &str = "marqo-base maintainer-script report 1";

impl ScriptReport {
    /// How many actions have `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.actions.iter().filter(|a| a.outcome == outcome).count()
    }

    /// The packages with an action not replicated.
    pub fn packages_not_replicated(&self) -> BTreeSet<&str> {
        self.actions
            .iter()
            .filter(|a| a.outcome == Outcome::NotReplicated)
            .map(|a| a.package.as_str())
            .collect()
    }

    /// The one line a build prints.
    pub fn summary(&self) -> String {
        format!(
            "maintainer scripts: {} actions replicated, {} not replicated in {} packages (build -v lists them); \
             {} not needed in a container, {} with nothing to do on a fresh install",
            self.count(Outcome::Replicated),
            self.count(Outcome::NotReplicated),
            self.packages_not_replicated().len(),
            self.count(Outcome::NotNeededInContainer),
            self.count(Outcome::NothingOnFreshInstall),
        )
    }

    /// One line per action: `package script:line: command: outcome (note)`.
    pub fn lines(&self) -> Vec<String> {
        self.actions
            .iter()
            .map(|a| {
                format!("{} {}:{}: {}: {} ({})", a.package, a.script, a.line, a.command, a.outcome, a.note)
            })
            .collect()
    }

    /// The report as text [`ScriptReport::parse`] reads back (to keep beside a cached layer).
    pub fn to_text(&self) -> String {
        let mut out = format!("{FORMAT}\n");
        for a in &self.actions {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                a.package, a.script, a.line, a.outcome, a.command, a.note
            ));
        }
        out
    }

    /// Reads [`ScriptReport::to_text`]'s output; `None` for anything else.
    pub fn parse(text: &str) -> Option<ScriptReport> {
        let mut lines = text.lines();
        if lines.next()? != FORMAT {
            return None;
        }
        let mut actions = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.splitn(6, '\t').collect();
            let [package, script, at, outcome, command, note] = f[..] else { return None };
            actions.push(ScriptAction {
                package: package.to_string(),
                script: script.to_string(),
                line: at.parse().ok()?,
                outcome: Outcome::parse(outcome)?,
                command: command.to_string(),
                note: note.to_string(),
            });
        }
        Some(ScriptReport { actions })
    }
}

/// Reads every package's `preinst` and `postinst` and sets each action against what
/// configuration `generated` and the configured `root`.
pub fn report(installed: &[InstalledPackage], generated: &[Generated], root: &Path) -> ScriptReport {
    let effects = Effects::new(installed, generated, root);
    let mut actions = Vec::new();
    for p in installed {
        for script in ["preinst", "postinst"] {
            let Some(bytes) = p.control.get(script) else { continue };
            let package = p.locked.name.as_str();
            if !is_shell(bytes) {
                let what =
                    if bytes.starts_with(b"\x7fELF") { "a compiled program" } else { "not a shell script" };
                actions.push(ScriptAction {
                    package: package.to_string(),
                    script: script.to_string(),
                    line: 1,
                    command: format!("({what})"),
                    outcome: Outcome::NotReplicated,
                    note: "not read".to_string(),
                });
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            let commands = parse_commands(&text);
            let vars = literal_assignments(&commands);
            effects.start(package, script);
            for cmd in &commands {
                for (outcome, note) in effects.judge(cmd, &vars) {
                    actions.push(ScriptAction {
                        package: package.to_string(),
                        script: script.to_string(),
                        line: cmd.line,
                        command: cmd.display(),
                        outcome,
                        note,
                    });
                }
            }
        }
    }
    ScriptReport { actions }
}

/// The fuzz target's entry: reads `text` as a `postinst` of a package that ships nothing and
/// judges every command against an empty root. Not an API.
#[doc(hidden)]
pub fn fuzz_script(text: &str) -> usize {
    let effects = Effects::new(&[], &[], Path::new("/nonexistent/fuzz-root"));
    effects.start("fuzzed", "postinst");
    let commands = parse_commands(text);
    let vars = literal_assignments(&commands);
    let mut actions = 0;
    for cmd in &commands {
        let _ = cmd.display();
        actions += effects.judge(cmd, &vars).len();
    }
    actions
}

fn is_shell(script: &[u8]) -> bool {
    let first = script.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let first = String::from_utf8_lossy(first);
    let Some(interp) = first.strip_prefix("#!") else { return !script.starts_with(b"\x7fELF") };
    let program = interp.split_whitespace().next().unwrap_or("");
    matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash"))
}

/// A path a `postinst` makes with literal arguments: `mkdir [-p] [-m MODE] DIR`, `touch
/// FILE`, `cp SRC DEST`, `chmod MODE PATH` (octal) and `cat > FILE <<EOF` (a here-document
/// without expansions). What [`crate::fresh`] replays on a fresh install, where the path is
/// not there yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Creation {
    Dir { path: String, mode: Option<u32> },
    Touch { path: String },
    Copy { from: String, to: String },
    Mode { path: String, mode: u32 },
    Text { path: String, text: String },
}

/// The [`Creation`]s of a shell script, in order.
pub(crate) fn literal_creations(script: &str) -> Vec<Creation> {
    let commands = parse_commands(script);
    let vars = literal_assignments(&commands);
    let mut out = Vec::new();
    // What the script removes again (a flag file a trigger consumes) is not left behind.
    let mut removed: Vec<String> = Vec::new();
    for cmd in &commands {
        let words = command_words(cmd);
        let Some(name) = words.first().and_then(|w| w.literal(&vars)) else { continue };
        let args: Option<Vec<String>> = words[1..].iter().map(|w| w.literal(&vars)).collect();
        let Some(args) = args else { continue };
        let (options, operands): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| a.starts_with('-'));
        let absolute = |p: &&String| p.starts_with('/');
        match name.rsplit('/').next().unwrap_or(&name) {
            "mkdir" => {
                let mode = args
                    .iter()
                    .position(|a| a == "-m")
                    .and_then(|i| args.get(i + 1))
                    .and_then(|m| u32::from_str_radix(m, 8).ok());
                let skip = args.iter().position(|a| a == "-m").map(|i| i + 1);
                for (i, path) in args.iter().enumerate() {
                    if !path.starts_with('-') && Some(i) != skip && path.starts_with('/') {
                        out.push(Creation::Dir { path: path.clone(), mode });
                    }
                }
            }
            "touch" if options.is_empty() => {
                out.extend(
                    operands.into_iter().filter(absolute).map(|p| Creation::Touch { path: p.clone() }),
                );
            }
            "cp" if operands.len() == 2 && operands.iter().all(absolute) => {
                out.push(Creation::Copy { from: operands[0].clone(), to: operands[1].clone() });
            }
            "rm" => removed.extend(operands.into_iter().filter(absolute).cloned()),
            "chmod" if options.is_empty() && operands.len() == 2 && absolute(&operands[1]) => {
                if let Ok(mode) = u32::from_str_radix(operands[0], 8) {
                    out.push(Creation::Mode { path: operands[1].clone(), mode });
                }
            }
            _ => {}
        }
    }
    // Here-documents: the lexer skips their bodies; read them from the text.
    let lines: Vec<&str> = script.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("cat > ").or_else(|| trimmed.strip_prefix("cat >")) else {
            continue;
        };
        let Some((path, delimiter)) = rest.split_once("<<") else { continue };
        let path = path.trim();
        let strip_tabs = delimiter.starts_with('-');
        let delimiter = delimiter.trim_start_matches('-').trim();
        let quoted = delimiter.starts_with(['\'', '"', '\\']);
        let delimiter = delimiter.trim_matches(['\'', '"', '\\']);
        if !path.starts_with('/') || path.contains(['$', '`', ' ']) || delimiter.is_empty() {
            continue;
        }
        let mut text = String::new();
        let mut closed = false;
        for body in &lines[i + 1..] {
            let body = if strip_tabs { body.trim_start_matches('\t') } else { body };
            if body == delimiter {
                closed = true;
                break;
            }
            text.push_str(body);
            text.push('\n');
        }
        if closed && (quoted || !text.contains(['$', '`', '\\'])) {
            out.push(Creation::Text { path: path.to_string(), text });
        }
    }
    out.retain(|c| match c {
        Creation::Touch { path } | Creation::Text { path, .. } => !removed.contains(path),
        _ => true,
    });
    out
}

// ---------------------------------------------------------------------------------------
// Reading shell.

/// A piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// Text as written, unquoted (may hold glob characters).
    Bare(String),
    /// Quoted text.
    Quoted(String),
    /// `$name` or `${name}`.
    Var(String),
    /// A command substitution or an expansion we do not follow.
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Word {
    segs: Vec<Seg>,
    raw: String,
}

impl Word {
    fn push_bare(&mut self, c: char) {
        match self.segs.last_mut() {
            Some(Seg::Bare(s)) => s.push(c),
            _ => self.segs.push(Seg::Bare(c.to_string())),
        }
    }

    fn push_quoted(&mut self, c: char) {
        match self.segs.last_mut() {
            Some(Seg::Quoted(s)) => s.push(c),
            _ => self.segs.push(Seg::Quoted(c.to_string())),
        }
    }

    /// The word as a string when every part is known (variables from `vars`) and no glob is
    /// unquoted.
    fn literal(&self, vars: &Vars) -> Option<String> {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Bare(s) if s.contains(['*', '?', '[']) => return None,
                Seg::Bare(s) | Seg::Quoted(s) => out.push_str(s),
                Seg::Var(name) => out.push_str(vars.get(name)?.as_deref()?),
                Seg::Unknown => return None,
            }
        }
        Some(out)
    }

    /// The word as a pattern: unknown parts and unquoted globs match anything (`*`).
    fn pattern(&self, vars: &Vars) -> Vec<Pat> {
        let mut out = Vec::new();
        for seg in &self.segs {
            match seg {
                Seg::Bare(s) => {
                    for c in s.chars() {
                        out.push(if matches!(c, '*' | '?' | '[') { Pat::Any } else { Pat::Char(c) });
                    }
                }
                Seg::Quoted(s) => out.extend(s.chars().map(Pat::Char)),
                Seg::Var(name) => match vars.get(name).and_then(|v| v.as_deref()) {
                    Some(v) => out.extend(v.chars().map(Pat::Char)),
                    None => out.push(Pat::Any),
                },
                Seg::Unknown => out.push(Pat::Any),
            }
        }
        out
    }

    /// The unquoted text, for recognising command names, options and assignments.
    fn plain(&self) -> Option<&str> {
        match &self.segs[..] {
            [Seg::Bare(s)] | [Seg::Quoted(s)] => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pat {
    Char(char),
    Any,
}

/// Whether `text` matches `pattern`, in time linear in their product (the last `Any` is
/// the only one retried).
fn matches(pattern: &[Pat], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < t.len() {
        match pattern.get(p) {
            Some(Pat::Char(c)) if *c == t[i] => {
                p += 1;
                i += 1;
            }
            Some(Pat::Any) => {
                star = Some((p, i));
                p += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|x| *x == Pat::Any)
}

/// One simple command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Command {
    line: usize,
    words: Vec<Word>,
    /// Targets of `>` and `>>`.
    writes: Vec<Word>,
}

/// The words of a command from its name on: reserved words (`if`, `then`, `!`, ...) and
/// assignments before it left out.
fn command_words(cmd: &Command) -> Vec<&Word> {
    let mut words: Vec<&Word> = cmd.words.iter().collect();
    while let Some(first) = words.first() {
        let reserved = matches!(
            first.plain(),
            Some(
                "if" | "then"
                    | "else"
                    | "elif"
                    | "fi"
                    | "do"
                    | "done"
                    | "while"
                    | "until"
                    | "!"
                    | "{"
                    | "}"
                    | "esac"
                    | "time"
            )
        );
        if reserved || assignment(first).is_some() {
            words.remove(0);
        } else {
            break;
        }
    }
    words
}

impl Command {
    fn display(&self) -> String {
        let words = command_words(self);
        let words: Vec<&Word> = if words.is_empty() { self.words.iter().collect() } else { words };
        let mut text: Vec<String> = words.iter().map(|w| w.raw.clone()).collect();
        for w in self.writes.iter().filter(|w| !w.raw.starts_with("/dev/")) {
            text.push(format!("> {}", w.raw));
        }
        let text = text.join(" ");
        if text.chars().count() > 120 {
            format!("{}...", text.chars().take(117).collect::<String>())
        } else {
            text
        }
    }
}

/// Variables assigned a literal exactly once (or always the same one); `None` for those
/// assigned anything else.
type Vars = BTreeMap<String, Option<String>>;

fn assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Seg::Bare(first)) = word.segs.first() else { return None };
    let (name, rest) = first.split_once('=')?;
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let mut value = Word { raw: String::new(), segs: Vec::new() };
    if !rest.is_empty() {
        value.segs.push(Seg::Bare(rest.to_string()));
    }
    value.segs.extend(word.segs[1..].iter().cloned());
    Some((name.to_string(), value))
}

fn literal_assignments(commands: &[Command]) -> Vars {
    // dpkg's own variables, as a fresh install into `/` has them.
    let mut vars: Vars = BTreeMap::from([("DPKG_ROOT".to_string(), Some(String::new()))]);
    for cmd in commands {
        // Only a command made of assignments assigns in the script's own environment.
        let assigns: Vec<(String, Word)> = cmd.words.iter().map_while(assignment).collect();
        if assigns.len() != cmd.words.len() {
            continue;
        }
        for (name, value) in assigns {
            let lit = value.literal(&vars);
            match vars.get(&name) {
                None => {
                    vars.insert(name, lit);
                }
                Some(old) if *old != lit => {
                    vars.insert(name, None);
                }
                Some(_) => {}
            }
        }
    }
    vars
}

/// How deep command substitutions are read into (deeper ones are unknown words).
const MAX_NESTING: usize = 16;

/// Splits a script into simple commands (see the module docs).
fn parse_commands(text: &str) -> Vec<Command> {
    parse_nested(text, 0)
}

fn parse_nested(text: &str, nesting: usize) -> Vec<Command> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cmd = Command { line: 1, ..Default::default() };
    let mut word: Option<Word> = None;
    let mut line = 1;
    let mut i = 0;
    // What the next word is: `Some(true)` an output redirection target, `Some(false)` an
    // input one (dropped).
    let mut redirect: Option<bool> = None;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    let mut pending_heredoc: Option<bool> = None;
    // Open `(`s, and where the pipeline being read starts in `out` (a `case` pattern is one).
    let mut depth = 0usize;
    let mut pipeline_start = 0usize;

    let finish_word = |word: &mut Option<Word>,
                       cmd: &mut Command,
                       redirect: &mut Option<bool>,
                       heredoc: &mut Option<bool>,
                       heredocs: &mut Vec<(String, bool)>| {
        if let Some(w) = word.take() {
            if let Some(strip) = heredoc.take() {
                let delim: String = w
                    .segs
                    .iter()
                    .map(|s| match s {
                        Seg::Bare(t) | Seg::Quoted(t) => t.clone(),
                        Seg::Var(n) => format!("${n}"),
                        Seg::Unknown => String::new(),
                    })
                    .collect();
                heredocs.push((delim, strip));
            } else {
                match redirect.take() {
                    Some(true) => cmd.writes.push(w),
                    Some(false) => {}
                    None => cmd.words.push(w),
                }
            }
        }
    };
    let finish_cmd = |cmd: &mut Command, out: &mut Vec<Command>, line: usize| {
        let done = std::mem::take(cmd);
        if !done.words.is_empty() || !done.writes.is_empty() {
            out.push(done);
        }
        cmd.line = line;
    };

    macro_rules! word_mut {
        () => {{
            if word.is_none() {
                if cmd.words.is_empty() && cmd.writes.is_empty() {
                    cmd.line = line;
                }
                word = Some(Word::default());
            }
            word.as_mut().unwrap_or_else(|| unreachable!())
        }};
    }

    while i < chars.len() {
        let c = chars[i];
        // Raw text of the word, for display.
        match c {
            '\n' => {
                finish_word(&mut word, &mut cmd, &mut redirect, &mut pending_heredoc, &mut heredocs);
                finish_cmd(&mut cmd, &mut out, line + 1);
                pipeline_start = out.len();
                line += 1;
                i += 1;
                // Here-document bodies follow the line that opened them.
                for (delim, strip) in std::mem::take(&mut heredocs) {
                    while i < chars.len() {
                        let end = chars[i..].iter().position(|c| *c == '\n').map_or(chars.len(), |p| i + p);
                        let body_line: String = chars[i..end].iter().collect();
                        i = (end + 1).min(chars.len().max(end));
                        line += 1;
                        let body_line = if strip { body_line.trim_start_matches('\t') } else { &body_line };
                        if body_line == delim {
                            break;
                        }
                    }
                }
                cmd.line = line;
            }
            ' ' | '\t' => {
                finish_word(&mut word, &mut cmd, &mut redirect, &mut pending_heredoc, &mut heredocs);
                i += 1;
            }
            '#' if word.is_none() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                if chars.get(i + 1) == Some(&'\n') {
                    line += 1;
                    i += 2;
                } else {
                    let next = chars.get(i + 1).copied().unwrap_or('\\');
                    let w = word_mut!();
                    w.raw.push('\\');
                    w.raw.push(next);
                    w.push_quoted(next);
                    i += 2;
                }
            }
            '\'' => {
                let w = word_mut!();
                w.raw.push('\'');
                i += 1;
                let mut quoted = String::new();
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    quoted.push(chars[i]);
                    w.raw.push(chars[i]);
                    i += 1;
                }
                w.raw.push('\'');
                i += 1;
                w.segs.push(Seg::Quoted(quoted));
            }
            '"' => {
                let w = word_mut!();
                w.raw.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    let d = chars[i];
                    match d {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            w.raw.push(d);
                            w.raw.push(chars[i + 1]);
                            w.push_quoted(chars[i + 1]);
                            i += 2;
                        }
                        '$' => {
                            let (seg, used) = dollar(&chars[i..]);
                            w.raw.extend(&chars[i..i + used]);
                            line += chars[i..i + used].iter().filter(|c| **c == '\n').count();
                            w.segs.push(seg);
                            i += used;
                        }
                        '`' => {
                            let end = chars[i + 1..]
                                .iter()
                                .position(|c| *c == '`')
                                .map_or(chars.len(), |p| i + 1 + p);
                            w.raw.extend(&chars[i..(end + 1).min(chars.len())]);
                            w.segs.push(Seg::Unknown);
                            i = end + 1;
                        }
                        _ => {
                            if d == '\n' {
                                line += 1;
                            }
                            w.raw.push(d);
                            w.push_quoted(d);
                            i += 1;
                        }
                    }
                }
                w.raw.push('"');
                i += 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                // A command substitution: its commands are read as commands; the word it
                // is part of becomes unknown.
                let w = word_mut!();
                w.raw.push_str("$(...)");
                w.segs.push(Seg::Unknown);
                // The substitution's own commands come first (they run first); the word
                // and the command around it go on after it.
                let depth_start = i + 2;
                let mut depth = 1;
                let mut j = depth_start;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                let inner: String = chars[depth_start..j.saturating_sub(1).max(depth_start)].iter().collect();
                for mut sub in inner_commands(&inner, nesting) {
                    sub.line += line - 1;
                    out.push(sub);
                }
                line += inner.matches('\n').count();
                i = j;
            }
            '$' => {
                let (seg, used) = dollar(&chars[i..]);
                let w = word_mut!();
                w.raw.extend(&chars[i..i + used]);
                w.segs.push(seg);
                i += used;
            }
            '`' => {
                let end = chars[i + 1..].iter().position(|c| *c == '`').map_or(chars.len(), |p| i + 1 + p);
                let inner: String = chars[i + 1..end.min(chars.len())].iter().collect();
                let w = word_mut!();
                w.raw.push_str("`...`");
                w.segs.push(Seg::Unknown);
                for mut sub in inner_commands(&inner, nesting) {
                    sub.line += line - 1;
                    out.push(sub);
                }
                line += inner.matches('\n').count();
                i = end + 1;
            }
            ';' | '&' | '|' | '(' | ')' => {
                // `2>&1`, `>&2`: part of a redirection.
                if c == '&' && (redirect.is_some() || chars.get(i + 1) == Some(&'>')) {
                    i += 1;
                    continue;
                }
                if c == ')' && depth == 0 {
                    // The end of a `case` pattern (`install|upgrade)`): not commands.
                    word = None;
                    redirect = None;
                    cmd = Command { line, ..Default::default() };
                    out.truncate(pipeline_start);
                    i += 1;
                    continue;
                }
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                finish_word(&mut word, &mut cmd, &mut redirect, &mut pending_heredoc, &mut heredocs);
                finish_cmd(&mut cmd, &mut out, line);
                let pipe = c == '|' && chars.get(i + 1) != Some(&'|');
                if !pipe {
                    pipeline_start = out.len();
                }
                i += 1;
            }
            '>' | '<' => {
                // A file descriptor number before it is part of the redirection.
                if let Some(w) = &word {
                    if w.raw.chars().all(|c| c.is_ascii_digit()) {
                        word = None;
                    }
                }
                finish_word(&mut word, &mut cmd, &mut redirect, &mut pending_heredoc, &mut heredocs);
                if c == '<' && chars.get(i + 1) == Some(&'<') {
                    i += 2;
                    let strip = chars.get(i) == Some(&'-');
                    if strip {
                        i += 1;
                    }
                    pending_heredoc = Some(strip);
                    continue;
                }
                redirect = Some(c == '>');
                i += 1;
                while i < chars.len() && matches!(chars[i], '>' | '|') {
                    i += 1;
                }
                if chars.get(i) == Some(&'&') {
                    // `>&2`: a descriptor, not a file.
                    redirect = Some(false);
                    i += 1;
                }
            }
            _ => {
                let w = word_mut!();
                w.raw.push(c);
                w.push_bare(c);
                i += 1;
            }
        }
    }
    finish_word(&mut word, &mut cmd, &mut redirect, &mut pending_heredoc, &mut heredocs);
    finish_cmd(&mut cmd, &mut out, line);
    out
}

/// The commands of a substitution, unless it is nested too deep to read.
fn inner_commands(inner: &str, nesting: usize) -> Vec<Command> {
    if nesting >= MAX_NESTING {
        return Vec::new();
    }
    parse_nested(inner, nesting + 1)
}

/// A `$` expansion at the start of `chars`: the segment and how many characters it took.
fn dollar(chars: &[char]) -> (Seg, usize) {
    match chars.get(1) {
        Some('{') => {
            let end = chars[2..].iter().position(|c| *c == '}').map_or(chars.len(), |p| p + 2);
            let inner: String = chars[2..end].iter().collect();
            let seg = if inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !inner.is_empty() {
                Seg::Var(inner)
            } else {
                Seg::Unknown
            };
            (seg, (end + 1).min(chars.len()))
        }
        Some('(') => {
            let mut depth = 0;
            let mut j = 1;
            while j < chars.len() {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            (Seg::Unknown, (j + 1).min(chars.len()))
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let len = chars[1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').count();
            (Seg::Var(chars[1..1 + len].iter().collect()), 1 + len)
        }
        Some(c) if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
            (Seg::Unknown, 2)
        }
        _ => (Seg::Bare("$".into()), 1),
    }
}

// ---------------------------------------------------------------------------------------
// Judging actions.

/// What the configured root has, to judge actions by their effects.
struct Effects<'a> {
    /// Every path a package shipped.
    shipped: BTreeSet<&'a str>,
    /// The paths of each package.
    files: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// What configuration wrote, by absolute path.
    generated: BTreeMap<String, &'a Generated>,
    users: BTreeMap<String, u64>,
    groups: BTreeMap<String, u64>,
    shells: BTreeSet<String>,
    /// (path, diverted to, package).
    diversions: Vec<(String, String, String)>,
    /// path -> mode.
    statoverrides: BTreeMap<String, u32>,
    /// name -> the choices' paths.
    alternatives: BTreeMap<String, Vec<String>>,
    root: RootWriter,
    /// The script being read.
    current: RefCell<Current>,
}

/// The script being read: whose, which, and what it made so far.
#[derive(Default)]
struct Current {
    package: String,
    /// A `preinst` runs before its package (and, on a fresh install, configuration) is
    /// there.
    preinst: bool,
    /// Paths earlier commands of the script make (`> file`, `touch`, `mkdir`, `cp`, `ln`).
    created: BTreeSet<String>,
}

fn file_text(generated: &BTreeMap<String, &Generated>, path: &str) -> String {
    match generated.get(path) {
        Some(Generated::File { content, .. }) => String::from_utf8_lossy(content).into_owned(),
        _ => String::new(),
    }
}

impl<'a> Effects<'a> {
    fn new(installed: &'a [InstalledPackage], generated: &'a [Generated], root: &Path) -> Effects<'a> {
        let shipped = installed.iter().flat_map(|p| p.files.iter().map(String::as_str)).collect();
        let files = installed
            .iter()
            .map(|p| (p.locked.name.as_str(), p.files.iter().map(String::as_str).collect()))
            .collect();
        let mut by_path = BTreeMap::new();
        for g in generated {
            let path = match g {
                Generated::File { path, .. }
                | Generated::Symlink { path, .. }
                | Generated::Dir { path, .. }
                | Generated::Owner { path, .. } => path,
            };
            by_path.insert(format!("/{}", path.trim_start_matches('/')), g);
        }
        let ids = |text: String| -> BTreeMap<String, u64> {
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
                })
                .collect()
        };
        let users = ids(file_text(&by_path, "/etc/passwd"));
        let groups = ids(file_text(&by_path, "/etc/group"));
        let shells = file_text(&by_path, "/etc/shells").lines().map(str::to_string).collect();
        let diversions_text = file_text(&by_path, "/var/lib/dpkg/diversions");
        let d: Vec<&str> = diversions_text.lines().collect();
        let diversions =
            d.chunks_exact(3).map(|c| (c[0].to_string(), c[1].to_string(), c[2].to_string())).collect();
        let statoverrides = file_text(&by_path, "/var/lib/dpkg/statoverride")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.get(3)?.to_string(), u32::from_str_radix(f.get(2)?, 8).ok()?))
            })
            .collect();
        let mut alternatives = BTreeMap::new();
        for (path, g) in &by_path {
            if let (Some(name), Generated::File { content, .. }) =
                (path.strip_prefix("/var/lib/dpkg/alternatives/"), g)
            {
                let lines = String::from_utf8_lossy(content).lines().map(str::to_string).collect();
                alternatives.insert(name.to_string(), lines);
            }
        }
        Effects {
            shipped,
            files,
            generated: by_path,
            users,
            groups,
            shells,
            diversions,
            statoverrides,
            alternatives,
            root: RootWriter::new(root),
            current: RefCell::new(Current::default()),
        }
    }

    /// Starts reading `package`'s `script`.
    fn start(&self, package: &str, script: &str) {
        *self.current.borrow_mut() =
            Current { package: package.to_string(), preinst: script == "preinst", created: BTreeSet::new() };
    }

    /// Whether `path` is there when the script runs on a fresh install: made earlier in the
    /// script; for a `preinst`, shipped by another package; else shipped, configured, or in
    /// the configured root.
    fn exists(&self, path: &str) -> bool {
        self.current.borrow().created.contains(path) || self.there_before(path)
    }

    /// [`Effects::exists`] without what the script itself made.
    fn there_before(&self, path: &str) -> bool {
        let current = self.current.borrow();
        if current.preinst {
            return self.files.iter().any(|(p, files)| *p != current.package && files.contains(path));
        }
        self.shipped.contains(path)
            || self.generated.contains_key(path)
            || self.root.resolve(path, false).is_ok_and(|p| std::fs::symlink_metadata(p).is_ok())
    }

    /// Whether `path` is there only because an earlier command of the script made it.
    fn made_by_script(&self, path: &str) -> bool {
        self.current.borrow().created.contains(path) && !self.there_before(path)
    }

    /// Remembers the paths a command makes, for the script's later commands.
    fn record(&self, name: &str, cmd_args: &[&Word], writes: &[&Word], vars: &Vars) {
        let mut made: Vec<String> = writes.iter().filter_map(|w| w.literal(vars)).collect();
        let (paths, _) = self.split(cmd_args, vars, &["-m", "--mode", "-o", "-g", "-t", "-S", "-d", "-r"]);
        let paths = paths.unwrap_or_default();
        match name {
            "touch" | "mkdir" => made.extend(paths),
            "cp" | "mv" | "ln" | "install" => made.extend(paths.last().cloned()),
            _ => {}
        }
        self.current.borrow_mut().created.extend(made.into_iter().filter(|p| p.starts_with('/')));
    }

    /// The permission bits the configured root has at `path`.
    fn mode(&self, path: &str) -> Option<u32> {
        let p = self.root.resolve(path, true).ok()?;
        Some(std::fs::metadata(p).ok()?.permissions().mode() & 0o7777)
    }

    /// The owner and group configuration gave `path`, if it gave it any.
    fn owner(&self, path: &str) -> Option<(u64, u64)> {
        match self.generated.get(path)? {
            Generated::File { uid, gid, .. }
            | Generated::Dir { uid, gid, .. }
            | Generated::Owner { uid, gid, .. } => Some((*uid, *gid)),
            Generated::Symlink { .. } => Some((0, 0)),
        }
    }

    fn id(&self, name: &str, users: bool) -> Option<u64> {
        name.parse()
            .ok()
            .or_else(|| if users { self.users.get(name) } else { self.groups.get(name) }.copied())
    }

    /// The actions of one command, with their outcomes: the command's own when it is an
    /// action (its redirections are part of it), else its writes to files.
    fn judge(&self, cmd: &Command, vars: &Vars) -> Vec<(Outcome, String)> {
        let package = self.current.borrow().package.clone();
        let words = command_words(cmd);
        let writes: Vec<&Word> =
            cmd.writes.iter().filter(|w| !w.literal(vars).is_some_and(|p| p.starts_with("/dev/"))).collect();
        let name = words
            .first()
            .and_then(|w| w.literal(vars))
            .map(|n| n.rsplit('/').next().unwrap_or(&n).to_string());
        let own = match name.as_deref() {
            None | Some("for" | "case" | "in" | "select" | "function") => None,
            Some(name) => self.command(&package, name, &words[1..], vars),
        };
        let out = match (known(&package, name.as_deref().unwrap_or(":")), own) {
            // What crate::fresh replicates as a whole (checked against mmdebstrap's tree),
            // when its evidence is in the root.
            (Some((evidence, outcome, note)), _) => match evidence {
                Some(path) if !self.exists(path) => {
                    vec![(Outcome::NotReplicated, format!("{path} is missing: {note}"))]
                }
                _ => vec![(outcome, note.to_string())],
            },
            (None, Some(judged)) => vec![judged],
            (None, None) => writes.iter().map(|w| self.write(w, vars)).collect(),
        };
        if let Some(name) = &name {
            self.record(name, &words[1..], &writes, vars);
        }
        out
    }

    /// A write through `>` or `>>`.
    fn write(&self, target: &Word, vars: &Vars) -> (Outcome, String) {
        match target.literal(vars) {
            Some(path) if matches!(self.generated.get(&path), Some(Generated::File { .. })) => {
                (Outcome::Replicated, format!("{path} is written"))
            }
            Some(path) => (Outcome::NotReplicated, format!("would write {path}")),
            None => (Outcome::NotReplicated, format!("would write {}", target.raw)),
        }
    }

    fn command(&self, package: &str, name: &str, args: &[&Word], vars: &Vars) -> Option<(Outcome, String)> {
        use Outcome::*;
        let opts: Vec<String> =
            args.iter().filter_map(|a| a.literal(vars)).filter(|a| a.starts_with('-')).collect();
        let has = |o: &str| opts.iter().any(|x| x == o);
        let container = |what: &str| Some((NotNeededInContainer, what.to_string()));
        Some(match name {
            "systemctl" | "deb-systemd-helper" | "deb-systemd-invoke" | "invoke-rc.d" | "update-rc.d"
            | "service" | "start-stop-daemon" | "initctl" | "udevadm" => {
                return container("service management; a container has no init system")
            }
            "update-binfmts" => return container("binfmt handlers belong to the host's kernel"),
            "update-initramfs" | "depmod" | "update-grub" | "modprobe" => {
                return container("boot and kernel modules are the host's")
            }
            "dpkg-maintscript-helper" => (NothingOnFreshInstall, "it acts on upgrades and removals".into()),
            "ldconfig" => {
                if has("-p") || has("--print-cache") {
                    return None;
                }
                self.flag("/etc/ld.so.cache", "/etc/ld.so.cache is written", "would write /etc/ld.so.cache")
            }
            "update-ca-certificates" => self.flag(
                "/etc/ssl/certs/ca-certificates.crt",
                "the CA bundle and /etc/ssl/certs links are written",
                "would write the CA bundle",
            ),
            "update-passwd" if has("--dry-run") || has("-n") => return None,
            "update-passwd" => self.flag(
                "/etc/passwd",
                "/etc/passwd and /etc/group come from base-passwd's master files",
                "would write /etc/passwd",
            ),
            "dpkg-trigger" => self.trigger(args, vars),
            "java" | "keytool" => self.java(package, name, args, vars),
            "update-alternatives" => self.alternative(package, args, vars)?,
            "dpkg-divert" => self.divert(package, args, vars)?,
            "dpkg-statoverride" => self.statoverride(args, vars)?,
            "add-shell" => {
                let shells: Vec<Option<String>> = args.iter().map(|a| a.literal(vars)).collect();
                if !shells.is_empty()
                    && shells.iter().all(|s| s.as_ref().is_some_and(|s| self.shells.contains(s)))
                {
                    (Replicated, "in /etc/shells".into())
                } else {
                    (NotReplicated, "would add to /etc/shells".into())
                }
            }
            "remove-shell" | "py3clean" | "pyclean" => {
                (NothingOnFreshInstall, "nothing to remove on a fresh install".into())
            }
            "adduser" | "addgroup" | "useradd" | "groupadd" => self.account(name, args, vars),
            "mkdir" => self.mkdir(args, vars),
            "ln" => self.ln(args, vars),
            "cp" | "mv" | "install" => self.copy(name, args, vars),
            "rm" | "rmdir" => self.remove(args, vars),
            "touch" => self.touch(args, vars),
            "chmod" => self.chmod(args, vars),
            "chown" | "chgrp" => self.chown(name, args, vars),
            "sed" if has("-i") || opts.iter().any(|o| o.starts_with("-i") || o == "--in-place") => match args
                .last()
                .and_then(|a| a.literal(vars))
            {
                Some(p) if !self.exists(&p) => (NothingOnFreshInstall, format!("no {p} on a fresh install")),
                _ => (NotReplicated, "would edit a file in place".into()),
            },
            "ucf"
            | "ucfr"
            | "py3compile"
            | "pycompile"
            | "pam-auth-update"
            | "update-mime-database"
            | "update-mime"
            | "update-desktop-database"
            | "fc-cache"
            | "gio-querymodules"
            | "glib-compile-schemas"
            | "gdk-pixbuf-query-loaders"
            | "install-info"
            | "mandb"
            | "gtk-update-icon-cache"
            | "update-icon-caches"
            | "locale-gen"
            | "update-locale"
            | "localedef"
            | "setcap"
            | "make-ssl-cert"
            | "systemd-tmpfiles"
            | "systemd-sysusers"
            | "update-fonts-dir"
            | "update-fonts-scale"
            | "update-fonts-alias"
            | "mkfontdir"
            | "mkfontscale"
            | "update-xmlcatalog"
            | "update-catalog"
            | "update-perl-sax-parsers"
            | "update-inetd"
            | "update-menus"
            | "usermod"
            | "gpasswd"
            | "chsh"
            | "chpasswd"
            | "chage"
            | "passwd"
            | "newaliases"
            | "dpkg-reconfigure"
            | "update-dictcommon-aspell"
            | "update-default-aspell"
            | "update-gsfontmap"
            | "texhash"
            | "mktexlsr"
            | "update-texmf"
            | "update-java-alternatives"
            | "pwconv"
            | "grpconv" => (NotReplicated, format!("{name} is not run")),
            _ => return None,
        })
    }

    fn flag(&self, path: &str, done: &str, missing: &str) -> (Outcome, String) {
        if self.generated.contains_key(path) {
            (Outcome::Replicated, done.to_string())
        } else {
            (Outcome::NotReplicated, missing.to_string())
        }
    }

    fn trigger(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        let name = args.iter().filter_map(|a| a.literal(vars)).find(|a| !a.starts_with('-'));
        match name.as_deref() {
            Some("ldconfig") => {
                self.flag("/etc/ld.so.cache", "/etc/ld.so.cache is written", "would run ldconfig")
            }
            Some("update-ca-certificates" | "update-ca-certificates-fresh") => self.flag(
                "/etc/ssl/certs/ca-certificates.crt",
                "the CA bundle is written",
                "would run update-ca-certificates",
            ),
            Some("update-ca-certificates-java" | "update-ca-certificates-java-fresh") => self.flag(
                "/etc/ssl/certs/java/cacerts",
                "the Java truststore is written",
                "would update the Java truststore",
            ),
            Some(other) => (Outcome::NotReplicated, format!("the trigger {other} is not processed")),
            None => (Outcome::NotReplicated, "a trigger is not processed".into()),
        }
    }

    fn java(&self, package: &str, name: &str, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        let literal: Vec<String> = args.iter().filter_map(|a| a.literal(vars)).collect();
        if package == "ca-certificates-java" {
            if name == "keytool" && literal.iter().any(|a| a == "-importkeystore") {
                if !self.shipped.contains("/etc/ssl/certs/java/cacerts") {
                    return (
                        Outcome::NothingOnFreshInstall,
                        "converts an older keystore; a fresh install has none".into(),
                    );
                }
            } else if name == "java" && literal.iter().any(|a| a == "-jar") {
                return self.flag(
                    "/etc/ssl/certs/java/cacerts",
                    "the Java truststore is written from /etc/ssl/certs/*.pem",
                    "would write the Java truststore",
                );
            }
        }
        (Outcome::NotReplicated, format!("{name} is not run"))
    }

    fn alternative(&self, package: &str, args: &[&Word], vars: &Vars) -> Option<(Outcome, String)> {
        use Outcome::*;
        let action = args.iter().filter_map(|a| a.plain()).find(|a| {
            a.starts_with("--") && !matches!(*a, "--quiet" | "--verbose" | "--force" | "--skip-auto")
        })?;
        Some(match action {
            "--install" => {
                let at = args.iter().position(|a| a.plain() == Some("--install"))?;
                let [link, name, path, ..] = &args[at + 1..] else {
                    return Some((NotReplicated, "an --install without its arguments".into()));
                };
                let (name_pat, path_pat, link_pat) =
                    (name.pattern(vars), path.pattern(vars), link.pattern(vars));
                let shipped_by_package = |p: &str| self.files.get(package).is_some_and(|f| f.contains(p));
                let found = self.alternatives.iter().find(|(alt, lines)| {
                    matches(&name_pat, alt)
                        && lines.get(1).is_some_and(|l| matches(&link_pat, l))
                        && lines
                            .iter()
                            .any(|l| matches(&path_pat, l) && l.starts_with('/') && shipped_by_package(l))
                });
                let what = name.literal(vars).unwrap_or_else(|| name.raw.clone());
                match found {
                    Some((alt, _)) => (Replicated, format!("/var/lib/dpkg/alternatives/{alt} has it")),
                    None => (NotReplicated, format!("the alternative {what} is not installed")),
                }
            }
            "--remove" | "--remove-all" => {
                (NothingOnFreshInstall, "nothing to remove on a fresh install".into())
            }
            "--auto" => {
                let at = args.iter().position(|a| a.plain() == Some("--auto"))?;
                match args.get(at + 1).and_then(|w| w.literal(vars)) {
                    Some(name) if self.alternatives.contains_key(&name) => {
                        (Replicated, format!("{name} is in auto mode"))
                    }
                    Some(name) => {
                        (NothingOnFreshInstall, format!("no alternative {name} on a fresh install"))
                    }
                    None => (NotReplicated, "an alternative not known before it runs".into()),
                }
            }
            "--set" | "--config" | "--all" | "--set-selections" => {
                (NotReplicated, "a choice other than auto mode's".into())
            }
            _ => return None,
        })
    }

    fn divert(&self, package: &str, args: &[&Word], vars: &Vars) -> Option<(Outcome, String)> {
        use Outcome::*;
        let opts: Vec<&str> = args.iter().filter_map(|a| a.plain()).filter(|a| a.starts_with("--")).collect();
        if opts.iter().any(|o| matches!(*o, "--list" | "--listpackage" | "--truename")) {
            return None;
        }
        if opts.contains(&"--remove") {
            return Some((NothingOnFreshInstall, "nothing to remove on a fresh install".into()));
        }
        let value =
            |opt: &str| args.iter().position(|a| a.plain() == Some(opt)).and_then(|i| args.get(i + 1));
        let package_pat = value("--package").map(|w| w.pattern(vars)).unwrap_or_else(|| vec![Pat::Any]);
        let divert_pat = value("--divert").map(|w| w.pattern(vars)).unwrap_or_else(|| vec![Pat::Any]);
        let path = args.last()?;
        let path_pat = path.pattern(vars);
        let found = self.diversions.iter().any(|(p, to, by)| {
            matches(&path_pat, p)
                && matches(&divert_pat, to)
                && matches(&package_pat, by)
                && (by == package || value("--package").is_some())
        });
        Some(if found {
            (Replicated, "in /var/lib/dpkg/diversions".into())
        } else {
            (
                NotReplicated,
                format!("{} is not diverted", path.literal(vars).unwrap_or_else(|| path.raw.clone())),
            )
        })
    }

    fn statoverride(&self, args: &[&Word], vars: &Vars) -> Option<(Outcome, String)> {
        use Outcome::*;
        let plain: Vec<&str> = args.iter().filter_map(|a| a.plain()).collect();
        if plain.contains(&"--remove") {
            return Some((NothingOnFreshInstall, "nothing to remove on a fresh install".into()));
        }
        if !plain.contains(&"--add") {
            return None;
        }
        let positional: Vec<&&Word> =
            args.iter().filter(|a| !a.plain().is_some_and(|p| p.starts_with("--"))).collect();
        let [.., _, _, mode, path] = &positional[..] else {
            return Some((NotReplicated, "an --add without its arguments".into()));
        };
        let (Some(mode), Some(path)) = (mode.literal(vars), path.literal(vars)) else {
            return Some((NotReplicated, "an override of a path not known before it runs".into()));
        };
        Some(match (u32::from_str_radix(&mode, 8), self.statoverrides.get(&path)) {
            (Ok(m), Some(have)) if m == *have => {
                (Replicated, format!("{path} in /var/lib/dpkg/statoverride"))
            }
            _ => (NotReplicated, format!("{path} is not overridden to {mode}")),
        })
    }

    fn account(&self, name: &str, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let takes_value: &[&str] = if name.starts_with("add") {
            &[
                "--home",
                "--shell",
                "--uid",
                "--gid",
                "--ingroup",
                "--gecos",
                "--conf",
                "--firstuid",
                "--lastuid",
                "--firstgid",
                "--lastgid",
                "--comment",
            ]
        } else {
            &["-c", "-d", "-e", "-f", "-g", "-G", "-k", "-K", "-p", "-s", "-u", "-b", "-R", "-P", "-Z"]
        };
        let mut positional = Vec::new();
        let mut skip = false;
        let mut group_too = false;
        for a in args {
            if skip {
                skip = false;
                continue;
            }
            match a.plain() {
                Some(o) if takes_value.contains(&o) => skip = true,
                Some("--group") => group_too = true,
                Some(o) if o.starts_with('-') => {}
                _ => positional.push(*a),
            }
        }
        let names: Vec<Option<String>> = positional.iter().map(|w| w.literal(vars)).collect();
        let user_cmd = matches!(name, "adduser" | "useradd");
        match &names[..] {
            [Some(account)] => {
                let present = if user_cmd {
                    self.users.contains_key(account)
                } else {
                    self.groups.contains_key(account)
                };
                let group_ok = !group_too || self.groups.contains_key(account);
                if present && group_ok {
                    let file = if user_cmd { "/etc/passwd" } else { "/etc/group" };
                    (Replicated, format!("{account} is in {file}"))
                } else {
                    (NotReplicated, format!("{account} is not created"))
                }
            }
            [Some(user), Some(group)] if name == "adduser" => {
                let member = file_text(&self.generated, "/etc/group").lines().any(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    f.first() == Some(&group.as_str())
                        && f.get(3).is_some_and(|m| m.split(',').any(|m| m == user))
                });
                if member {
                    (Replicated, format!("{user} is in the group {group}"))
                } else {
                    (NotReplicated, format!("{user} is not added to the group {group}"))
                }
            }
            _ => (NotReplicated, "an account whose name is not known before it runs".into()),
        }
    }

    /// The positional arguments as literals (`None` when one is not known), and the options
    /// with their values.
    fn split(
        &self,
        args: &[&Word],
        vars: &Vars,
        with_value: &[&str],
    ) -> (Option<Vec<String>>, BTreeMap<String, Option<String>>) {
        let mut positional = Some(Vec::new());
        let mut options = BTreeMap::new();
        let mut i = 0;
        let mut only_positional = false;
        while i < args.len() {
            let lit = args[i].literal(vars);
            match lit.as_deref() {
                Some("--") if !only_positional => only_positional = true,
                Some(o) if o.starts_with('-') && o.len() > 1 && !only_positional => {
                    if let Some((k, v)) = o.split_once('=') {
                        options.insert(k.to_string(), Some(v.to_string()));
                    } else if with_value.contains(&o) {
                        options.insert(o.to_string(), args.get(i + 1).and_then(|w| w.literal(vars)));
                        i += 1;
                    } else {
                        options.insert(o.to_string(), None);
                    }
                }
                Some(p) => {
                    if let Some(v) = positional.as_mut() {
                        v.push(p.to_string())
                    }
                }
                None => positional = None,
            }
            i += 1;
        }
        (positional, options)
    }

    fn mkdir(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (paths, options) = self.split(args, vars, &["-m", "--mode"]);
        let Some(paths) = paths.filter(|p| !p.is_empty()) else {
            return (NotReplicated, "a directory not known before it runs".into());
        };
        let mode = options
            .get("-m")
            .or(options.get("--mode"))
            .cloned()
            .flatten()
            .and_then(|m| u32::from_str_radix(&m, 8).ok());
        let mut outcomes = Vec::new();
        for p in &paths {
            outcomes.push(match self.generated.get(p.as_str()) {
                Some(Generated::Dir { mode: have, .. }) if mode.is_none_or(|m| m == *have) => {
                    (Replicated, format!("{p} is made"))
                }
                _ if self.shipped.contains(p.as_str()) && mode.is_none_or(|m| self.mode(p) == Some(m)) => {
                    (NothingOnFreshInstall, format!("{p} is shipped"))
                }
                _ => (NotReplicated, format!("{p} is not made")),
            });
        }
        worst(outcomes)
    }

    fn ln(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (paths, _) = self.split(args, vars, &["-t", "--target-directory", "-S", "--suffix"]);
        let Some(paths) = paths.filter(|p| p.len() >= 2) else {
            return (NotReplicated, "a link not known before it runs".into());
        };
        let (target, link) = (&paths[paths.len() - 2], &paths[paths.len() - 1]);
        let base = target.rsplit('/').next().unwrap_or(target);
        for candidate in [link.clone(), format!("{}/{base}", link.trim_end_matches('/'))] {
            if let Some(Generated::Symlink { target: have, .. }) = self.generated.get(candidate.as_str()) {
                return if have == target {
                    (Replicated, format!("{candidate} -> {target} is made"))
                } else {
                    (NotReplicated, format!("{candidate} points to {have}, not {target}"))
                };
            }
        }
        if self.shipped.contains(link.as_str())
            && self
                .root
                .resolve(link, false)
                .is_ok_and(|p| std::fs::read_link(p).is_ok_and(|t| t.to_string_lossy() == target.as_str()))
        {
            return (NothingOnFreshInstall, format!("{link} -> {target} is shipped"));
        }
        (NotReplicated, format!("{link} -> {target} is not made"))
    }

    fn copy(&self, name: &str, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (paths, options) = self.split(
            args,
            vars,
            &["-m", "-o", "-g", "--mode", "--owner", "--group", "-t", "--target-directory", "-S", "--suffix"],
        );
        if name == "install" && options.contains_key("-d") {
            return self.mkdir(args, vars);
        }
        let Some(paths) = paths.filter(|p| p.len() >= 2) else {
            return (NotReplicated, format!("{name} of files not known before it runs"));
        };
        let (sources, dest) = (&paths[..paths.len() - 1], &paths[paths.len() - 1]);
        if sources.iter().all(|s| !self.exists(s)) {
            return (NothingOnFreshInstall, format!("no {} on a fresh install", sources.join(" ")));
        }
        let base = sources[0].rsplit('/').next().unwrap_or(&sources[0]);
        for candidate in [dest.clone(), format!("{}/{base}", dest.trim_end_matches('/'))] {
            if matches!(
                self.generated.get(candidate.as_str()),
                Some(Generated::File { .. } | Generated::Symlink { .. })
            ) {
                return (Replicated, format!("{candidate} is written"));
            }
        }
        (NotReplicated, format!("{dest} is not written"))
    }

    fn remove(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let patterns: Vec<(Vec<Pat>, String)> = args
            .iter()
            .filter(|a| !a.plain().is_some_and(|p| p.starts_with('-')))
            .map(|a| (a.pattern(vars), a.literal(vars).unwrap_or_else(|| a.raw.clone())))
            .collect();
        if patterns.is_empty() {
            return (NothingOnFreshInstall, "nothing named".into());
        }
        let mut outcomes = Vec::new();
        for (pat, shown) in patterns {
            let is_literal = pat.iter().all(|p| matches!(p, Pat::Char(_)));
            if is_literal && self.made_by_script(&shown) {
                self.current.borrow_mut().created.remove(&shown);
                outcomes.push((NothingOnFreshInstall, format!("{shown} is the script's own, made before")));
                continue;
            }
            let present = if is_literal {
                self.exists(&shown)
            } else {
                // Paths not known before it runs can be anything under their known prefix.
                self.shipped
                    .iter()
                    .copied()
                    .chain(self.generated.keys().map(String::as_str))
                    .any(|p| matches(&pat, p))
            };
            outcomes.push(if present {
                (NotReplicated, format!("{shown} would be removed"))
            } else {
                (NothingOnFreshInstall, format!("no {shown} on a fresh install"))
            });
        }
        worst(outcomes)
    }

    fn touch(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (paths, _) = self.split(args, vars, &["-d", "-r", "-t"]);
        let Some(paths) = paths.filter(|p| !p.is_empty()) else {
            return (NotReplicated, "a file not known before it runs".into());
        };
        worst(
            paths
                .iter()
                .map(|p| match self.generated.get(p.as_str()) {
                    Some(Generated::File { .. }) => (Replicated, format!("{p} is written")),
                    _ if self.shipped.contains(p.as_str()) => {
                        (NothingOnFreshInstall, format!("{p} is shipped"))
                    }
                    _ => (NotReplicated, format!("{p} is not made")),
                })
                .collect(),
        )
    }

    fn chmod(&self, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (words, _) = self.split(args, vars, &["--reference"]);
        let Some(words) = words.filter(|w| w.len() >= 2) else {
            return (NotReplicated, "a mode or path not known before it runs".into());
        };
        let Ok(mode) = u32::from_str_radix(&words[0], 8) else {
            return (NotReplicated, format!("the symbolic mode {} is not applied", words[0]));
        };
        worst(
            words[1..]
                .iter()
                .map(|p| {
                    if self.made_by_script(p) {
                        (NotReplicated, format!("{p}, which the script makes, is not made"))
                    } else if !self.exists(p) {
                        (NothingOnFreshInstall, format!("no {p} on a fresh install"))
                    } else if self.mode(p) == Some(mode) {
                        if self.generated.contains_key(p.as_str()) {
                            (Replicated, format!("{p} has mode {mode:o}"))
                        } else {
                            (NothingOnFreshInstall, format!("{p} is shipped with mode {mode:o}"))
                        }
                    } else {
                        (NotReplicated, format!("{p} does not get mode {mode:o}"))
                    }
                })
                .collect(),
        )
    }

    fn chown(&self, name: &str, args: &[&Word], vars: &Vars) -> (Outcome, String) {
        use Outcome::*;
        let (words, _) = self.split(args, vars, &["--reference", "--from"]);
        let Some(words) = words.filter(|w| w.len() >= 2) else {
            return (NotReplicated, "an owner or path not known before it runs".into());
        };
        let spec = &words[0];
        let (user, group) = if name == "chgrp" {
            (None, Some(spec.as_str()))
        } else {
            match spec.split_once([':', '.']) {
                Some((u, g)) => (Some(u).filter(|u| !u.is_empty()), Some(g).filter(|g| !g.is_empty())),
                None => (Some(spec.as_str()), None),
            }
        };
        let uid = user.map(|u| self.id(u, true));
        let gid = group.map(|g| self.id(g, false));
        worst(
            words[1..]
                .iter()
                .map(|p| {
                    if self.made_by_script(p) {
                        return (NotReplicated, format!("{p}, which the script makes, is not made"));
                    }
                    if !self.exists(p) {
                        return (NothingOnFreshInstall, format!("no {p} on a fresh install"));
                    }
                    let have = self.owner(p).unwrap_or((0, 0));
                    let ok = uid.is_none_or(|u| u == Some(have.0)) && gid.is_none_or(|g| g == Some(have.1));
                    match (ok, self.generated.contains_key(p.as_str())) {
                        (true, true) => (Replicated, format!("{p} is owned by {spec}")),
                        (true, false) => (NothingOnFreshInstall, format!("{p} is shipped owned by {spec}")),
                        (false, _) => (NotReplicated, format!("{p} is not owned by {spec}")),
                    }
                })
                .collect(),
        )
    }
}

/// The scripts whose work [`crate::fresh`] and [`crate::configure`] replicate as a whole
/// rather than command by command (their helper functions take their paths as arguments):
/// by package and command, the path that shows it was done, the outcome and why. The
/// parity test (`tests/parity.rs` of the binary) compares the result with mmdebstrap's.
fn known(package: &str, command: &str) -> Option<(Option<&'static str>, Outcome, &'static str)> {
    use Outcome::*;
    let python_minimal = package.strip_suffix("-minimal").is_some_and(|v| v.starts_with("python3."));
    Some(match (package, command) {
        ("base-files", _) => (
            Some("/etc/profile"),
            Replicated,
            "base-files' fresh install: /etc/profile, /etc/motd, /root/.profile and .bashrc from \
             /usr/share/base-files, /etc/dpkg/origins/default, /opt, /srv, /media, /mnt, /usr/local/*, \
             /var/mail, /var/run -> /run, /var/lock -> /run/lock",
        ),
        ("libpam-runtime", "pam-auth-update") => (
            Some("/etc/pam.d/common-auth"),
            Replicated,
            "/etc/pam.d/common-* and /var/lib/pam from /usr/share/pam-configs, as pam-auth-update --package --force",
        ),
        ("libpam-modules", "pam-auth-update") => {
            (None, NothingOnFreshInstall, "it removes profiles on upgrades from old versions")
        }
        ("libc-bin", "cp") => (Some("/etc/nsswitch.conf"), Replicated, "/etc/nsswitch.conf from /usr/share/libc-bin"),
        ("readline-common", "cp") => (Some("/etc/inputrc"), Replicated, "/etc/inputrc from /usr/share/readline"),
        ("debianutils", "cp" | "update-shells") => {
            (Some("/var/lib/shells.state"), Replicated, "/etc/shells and /var/lib/shells.state, as update-shells")
        }
        ("dash", "cp" | "ln" | "mv" | "touch" | "rm" | "dpkg-divert") => (
            Some("/bin/sh"),
            Replicated,
            "dash claims /bin/sh: /bin/sh and sh(1) diverted by dash and linked to dash",
        ),
        ("login", "touch" | "chown" | "chmod") => {
            (Some("/etc/subuid"), Replicated, "/etc/subuid, /etc/subgid and /var/log/faillog, empty")
        }
        ("base-passwd", "update-passwd" | "rm") => {
            (None, NothingOnFreshInstall, "it compares an existing /etc/passwd with the master copy on upgrades")
        }
        ("passwd", "systemd-tmpfiles") => (None, NotNeededInContainer, "systemd's tmpfiles run at boot"),
        ("usr-is-merged", "rm" | "rmdir") => {
            (None, NothingOnFreshInstall, "it removes leftovers of a conversion; the root is merged from the start")
        }
        (_, "update-menus") => (None, NothingOnFreshInstall, "only where the menu package is installed"),
        ("bash", "ln") => (None, NothingOnFreshInstall, "only when nothing provides /bin/sh (dash does)"),
        ("ca-certificates", "chgrp" | "chmod" | "chown" | "mv" | "echo" | "done" | ":") => (
            None,
            NothingOnFreshInstall,
            "it merges an existing /etc/ca-certificates.conf on upgrades; a fresh install writes it new",
        ),
        ("coreutils", "ln") => {
            (Some("/usr/bin/touch"), Replicated, "/usr/bin/touch: /bin/touch on a merged /usr, else a link to it")
        }
        ("dpkg", "mv") => (None, NothingOnFreshInstall, "it moves alternatives' state files old dpkg misplaced"),
        ("init-system-helpers", "rm") => (None, NothingOnFreshInstall, "it removes a dangling link of old versions"),
        ("libc6", "touch" | "mkdir") => (None, NothingOnFreshInstall, "upgrade checks; /usr/lib64 comes with the root"),
        ("openssl", "ln") => (None, NothingOnFreshInstall, "only when /usr/lib/ssl is missing; the package ships it"),
        ("util-linux-extra", "chmod") => (None, NotNeededInContainer, "an init script: a container has no init system"),
        ("tzdata", "ln") => (Some("/etc/localtime"), Replicated, "/etc/localtime -> Etc/UTC, debconf's default"),
        (_, "chmod" | "chown" | "mkdir") if python_minimal => (
            None,
            Replicated,
            "/usr/local/lib/pythonX.Y/dist-packages, root's (the staff group's with /etc/staff-group-for-usr-local)",
        ),
        (_, "rm" | "rmdir") if python_minimal => (
            None,
            NothingOnFreshInstall,
            "it forgets the new runtime after its hooks ran; Debian's python has none, so the mark stays",
        ),
        _ => return None,
    })
}

/// The outcome of an action on several paths: not replicated if any is not, else replicated
/// if any is, else nothing to do.
fn worst(outcomes: Vec<(Outcome, String)>) -> (Outcome, String) {
    for want in [Outcome::NotReplicated, Outcome::Replicated] {
        let notes: Vec<&str> = outcomes.iter().filter(|(o, _)| *o == want).map(|(_, n)| n.as_str()).collect();
        if !notes.is_empty() {
            return (want, notes.join("; "));
        }
    }
    let notes: Vec<&str> = outcomes.iter().map(|(_, n)| n.as_str()).collect();
    (Outcome::NothingOnFreshInstall, notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(usize, String)> {
        parse_commands(text)
            .iter()
            .map(|c| (c.line, c.words.iter().map(|w| w.raw.clone()).collect::<Vec<_>>().join(" ")))
            .collect()
    }

    #[test]
    fn scripts_split_into_simple_commands() {
        let script = "#!/bin/sh\nset -e\n# a comment: rm -rf /\nif [ -x /usr/bin/foo ] && ! foo --check; then\n  \
                      update-alternatives --install /usr/bin/awk awk \\\n    /usr/bin/mawk 5\nfi\n\
                      x=$(dpkg-divert --truename /bin/sh) || true\ncat > /etc/foo.conf <<EOF\nrm -rf /not/a/command\nEOF\n\
                      echo 'a; b' \"c $x\" >&2 2>/dev/null; chmod 644 /etc/foo.conf\n";
        assert_eq!(
            names(script),
            [
                (2, "set -e".to_string()),
                (4, "if [ -x /usr/bin/foo ]".into()),
                (4, "! foo --check".into()),
                (4, "then".into()),
                (5, "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5".into()),
                (7, "fi".into()),
                (8, "dpkg-divert --truename /bin/sh".into()),
                (8, "x=$(...)".into()),
                (8, "true".into()),
                (9, "cat".into()),
                (12, "echo 'a; b' \"c $x\"".into()),
                (12, "chmod 644 /etc/foo.conf".into()),
            ]
        );
        let cat = &parse_commands(script)[9];
        assert_eq!(cat.writes[0].raw, "/etc/foo.conf");
    }

    #[test]
    fn deep_substitutions_are_not_followed_forever() {
        let deep = format!("{}true{}", "$(".repeat(100_000), ")".repeat(100_000));
        let t = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse_commands(&deep).len())
            .unwrap();
        assert!(t.join().unwrap() <= MAX_NESTING + 2);
    }

    #[test]
    fn case_patterns_are_not_commands() {
        let script = "case \"$1\" in\n  install|upgrade)\n    rm -f /x\n  ;;\n  abort-*) (cd /tmp; true) ;;\n  *) ;;\nesac\nf() {\n  touch /y\n}\n";
        assert_eq!(
            names(script),
            [
                (1, "case \"$1\" in".to_string()),
                (3, "rm -f /x".into()),
                (5, "cd /tmp".into()),
                (5, "true".into()),
                (7, "esac".into()),
                (8, "f".into()),
                (8, "{".into()),
                (9, "touch /y".into()),
                (10, "}".into()),
            ]
        );
    }

    #[test]
    fn literal_variables_expand_and_others_stay_unknown() {
        let commands = parse_commands(
            "basedir=/usr/lib/jvm/x\nn=1\nn=2\nfor i in $tools; do\n  cp $basedir/bin/$i \"$n\"\ndone\n",
        );
        let vars = literal_assignments(&commands);
        assert_eq!(vars.get("basedir"), Some(&Some("/usr/lib/jvm/x".to_string())));
        assert_eq!(vars.get("n"), Some(&None));
        let cp = commands.iter().find(|c| c.words[0].raw == "cp").unwrap();
        assert_eq!(cp.words[1].literal(&vars), None);
        assert!(matches(&cp.words[1].pattern(&vars), "/usr/lib/jvm/x/bin/java"));
        assert!(!matches(&cp.words[1].pattern(&vars), "/usr/lib/other/bin/java"));
        let many: Vec<Pat> = (0..40).flat_map(|_| [Pat::Any, Pat::Char('a')]).collect();
        assert!(!matches(&many, &"a".repeat(39)));
        assert!(matches(&[Pat::Any], ""));
        assert!(!matches(&[Pat::Char('a')], ""));
    }

    #[test]
    fn literal_creations_are_read_from_scripts() {
        let script = "#!/bin/sh\nset -e\nDIR=/etc/.java\n[ -d $DIR ] || mkdir -m 755 $DIR\n\
                      touch /var/lib/x/flag\nrm -f /var/lib/x/flag\ntouch /etc/empty\nchmod 600 /etc/empty\n\
                      cp /usr/share/a/a.conf /etc/a.conf\ncat > /etc/hosts.allow <<EOF\n# allow\nEOF\n\
                      cat > /etc/$name <<EOF\nx\nEOF\ncat > /etc/expanded <<EOF\n$HOME\nEOF\n";
        assert_eq!(
            literal_creations(script),
            vec![
                Creation::Dir { path: "/etc/.java".into(), mode: Some(0o755) },
                Creation::Touch { path: "/etc/empty".into() },
                Creation::Mode { path: "/etc/empty".into(), mode: 0o600 },
                Creation::Copy { from: "/usr/share/a/a.conf".into(), to: "/etc/a.conf".into() },
                Creation::Text { path: "/etc/hosts.allow".into(), text: "# allow\n".into() },
            ]
        );
    }

    #[test]
    fn reports_round_trip_as_text() {
        let report = ScriptReport {
            actions: vec![ScriptAction {
                package: "p".into(),
                script: "postinst".into(),
                line: 3,
                command: "ldconfig".into(),
                outcome: Outcome::NothingOnFreshInstall,
                note: "why: because".into(),
            }],
        };
        assert_eq!(ScriptReport::parse(&report.to_text()), Some(report));
        assert_eq!(ScriptReport::parse("something else\n"), None);
    }
}
