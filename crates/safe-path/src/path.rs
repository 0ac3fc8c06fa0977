//! [`normalize`] for member paths, [`resolve`] for link targets, under [`Rules`].

use std::ops::Range;

/// What a leading `/` (or `\` where it is a separator) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absolute {
    /// Refused with [`Refusal::Absolute`]: the archive must hold relative paths.
    Refuse,
    /// The root itself: `/etc/x` is `etc/x`, as in a `.deb`'s `data.tar` or a layer.
    FromRoot,
}

/// What Windows path syntax (`\`, a drive `C:`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// `\` and `:` are ordinary characters of a name, as in tar and POSIX.
    Literal,
    /// `\` separates components as `/` does (zip tools on Windows write it); `:` is ordinary.
    Separator,
    /// A `\` is refused ([`Refusal::Backslash`]), and so is a `:` in the first component
    /// ([`Refusal::DriveLetter`]), as a wheel installer must.
    Refuse,
}

/// How one kind of archive spells its paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// What a leading separator means.
    pub absolute: Absolute,
    /// What `\` and a drive letter mean.
    pub windows: Windows,
}

/// Why a path is refused. Callers turn it into their own error and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A NUL byte: no file system takes it, and C code would read a shorter path.
    Nul,
    /// A leading separator under [`Absolute::Refuse`].
    Absolute,
    /// A `\` under [`Windows::Refuse`].
    Backslash,
    /// A `:` in the first component under [`Windows::Refuse`].
    DriveLetter,
    /// A `..` component in a member path, refused even where it would stay inside: a member
    /// path names where an entry goes, and only a hostile archive climbs to say it.
    ParentDir,
    /// A link target whose `..` climbs above the root.
    Escapes,
}

/// What a path may be made of: `str`, or raw bytes (tar names need not be UTF-8).
///
/// Every byte the rules look at is ASCII, so splitting a `str` there keeps it UTF-8.
pub trait PathText: sealed::Sealed {
    /// The path's bytes.
    fn as_path_bytes(&self) -> &[u8];
    /// The part at `range`, whose ends are next to ASCII bytes (or the ends of the path).
    fn part(&self, range: Range<usize>) -> &Self;
}

impl PathText for str {
    fn as_path_bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn part(&self, range: Range<usize>) -> &str {
        &self[range]
    }
}

impl PathText for [u8] {
    fn as_path_bytes(&self) -> &[u8] {
        self
    }

    fn part(&self, range: Range<usize>) -> &[u8] {
        &self[range]
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for [u8] {}
}

/// The components of a member path relative to the root: `.` and empty components (`a//b`,
/// a trailing `/`) are dropped; NUL, `..` and what `rules` refuse are a [`Refusal`].
///
/// An empty result is the root itself (`""`, `./`, or `/` under [`Absolute::FromRoot`]):
/// whether that is an entry to skip, the root directory or an error is the caller's call.
pub fn normalize<T: PathText + ?Sized>(path: &T, rules: Rules) -> Result<Vec<&T>, Refusal> {
    let (_, parts) = split(path, rules)?;
    if parts.iter().any(|part| part.as_path_bytes() == b"..") {
        return Err(Refusal::ParentDir);
    }
    Ok(parts)
}

/// Where a link to `target` lands, relative to the root: `target` is read from `base` (a
/// directory as [`normalize`] returns it: the link's own directory for a symlink, the root
/// for a tar hard link) and its `..` components are followed lexically.
///
/// Climbing above the root is [`Refusal::Escapes`]; an absolute target is
/// [`Refusal::Absolute`] under [`Absolute::Refuse`] and starts from the root under
/// [`Absolute::FromRoot`]. Lexical resolution is exact only where the tree holds no other
/// links (or the caller resolves those itself).
pub fn resolve<'a, T: PathText + ?Sized>(
    base: &[&'a T],
    target: &'a T,
    rules: Rules,
) -> Result<Vec<&'a T>, Refusal> {
    let (absolute, parts) = split(target, rules)?;
    let mut out: Vec<&'a T> = if absolute { Vec::new() } else { base.to_vec() };
    for part in parts {
        if part.as_path_bytes() == b".." {
            out.pop().ok_or(Refusal::Escapes)?;
        } else {
            out.push(part);
        }
    }
    Ok(out)
}

/// Applies the checks every path gets and splits it: whether it starts at the root, and
/// its components without `.` and empty ones (`..` kept).
fn split<T: PathText + ?Sized>(path: &T, rules: Rules) -> Result<(bool, Vec<&T>), Refusal> {
    let bytes = path.as_path_bytes();
    if bytes.contains(&0) {
        return Err(Refusal::Nul);
    }
    if rules.windows == Windows::Refuse && bytes.contains(&b'\\') {
        return Err(Refusal::Backslash);
    }
    let is_separator = |byte: u8| byte == b'/' || (byte == b'\\' && rules.windows == Windows::Separator);
    let absolute = bytes.first().is_some_and(|&byte| is_separator(byte));
    if absolute && rules.absolute == Absolute::Refuse {
        return Err(Refusal::Absolute);
    }
    let mut parts = Vec::new();
    let mut start = 0;
    for end in (0..=bytes.len()).filter(|&i| i == bytes.len() || is_separator(bytes[i])) {
        let part = &bytes[start..end];
        if !part.is_empty() && part != b"." {
            parts.push(path.part(start..end));
        }
        start = end + 1;
    }
    if rules.windows == Windows::Refuse
        && parts.first().is_some_and(|first| first.as_path_bytes().contains(&b':'))
    {
        return Err(Refusal::DriveLetter);
    }
    Ok((absolute, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar member: `/` refused, `\` an ordinary character.
    const TAR: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Literal };
    /// A `.deb` or layer path: `/` is the root.
    const ROOTED: Rules = Rules { absolute: Absolute::FromRoot, windows: Windows::Literal };
    /// A zip written on Windows: `\` separates.
    const ZIP: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Separator };
    /// A wheel: Windows syntax refused.
    const WHEEL: Rules = Rules { absolute: Absolute::Refuse, windows: Windows::Refuse };

    fn parts(path: &str, rules: Rules) -> Result<Vec<&str>, Refusal> {
        normalize(path, rules)
    }

    #[test]
    fn relative_paths_are_normalized() {
        assert_eq!(parts("a/b", TAR), Ok(vec!["a", "b"]));
        assert_eq!(parts("./a", TAR), Ok(vec!["a"]));
        assert_eq!(parts("a/./b/.", TAR), Ok(vec!["a", "b"]));
        assert_eq!(parts("a//b/", TAR), Ok(vec!["a", "b"]));
        assert_eq!(parts("a..b/...", TAR), Ok(vec!["a..b", "..."]));
    }

    #[test]
    fn the_root_itself_is_empty() {
        for path in ["", ".", "./", ".//./"] {
            assert_eq!(parts(path, TAR), Ok(vec![]), "{path:?}");
        }
        assert_eq!(parts("/", ROOTED), Ok(vec![]));
    }

    #[test]
    fn absolute_paths_are_refused_or_rooted() {
        assert_eq!(parts("/etc/passwd", TAR), Err(Refusal::Absolute));
        assert_eq!(parts("//etc", TAR), Err(Refusal::Absolute));
        assert_eq!(parts("/", TAR), Err(Refusal::Absolute));
        assert_eq!(parts("/etc//passwd", ROOTED), Ok(vec!["etc", "passwd"]));
        assert_eq!(parts("\\etc", ZIP), Err(Refusal::Absolute));
        assert_eq!(parts("\\etc", TAR), Ok(vec!["\\etc"]));
    }

    #[test]
    fn parent_components_are_refused_anywhere() {
        for path in ["..", "../a", "a/..", "a/../b", "a/b/..", "a/../../b", "./..", "a/b/../"] {
            assert_eq!(parts(path, TAR), Err(Refusal::ParentDir), "{path:?}");
            assert_eq!(parts(path, ROOTED), Err(Refusal::ParentDir), "{path:?}");
        }
        assert_eq!(parts("/../etc", ROOTED), Err(Refusal::ParentDir));
    }

    #[test]
    fn nul_is_refused_whatever_the_rules() {
        for rules in [TAR, ROOTED, ZIP, WHEEL] {
            assert_eq!(parts("a\0b", rules), Err(Refusal::Nul));
            assert_eq!(parts("\0", rules), Err(Refusal::Nul));
        }
        assert_eq!(normalize(&b"a/\0"[..], TAR), Err(Refusal::Nul));
    }

    #[test]
    fn backslashes_follow_the_rules() {
        assert_eq!(parts("a\\..\\x", TAR), Ok(vec!["a\\..\\x"]));
        assert_eq!(parts("a\\b/c", ZIP), Ok(vec!["a", "b", "c"]));
        assert_eq!(parts("a\\..\\x", ZIP), Err(Refusal::ParentDir));
        assert_eq!(parts("..\\x", ZIP), Err(Refusal::ParentDir));
        assert_eq!(parts("a\\b", WHEEL), Err(Refusal::Backslash));
        assert_eq!(parts("C:/x", WHEEL), Err(Refusal::DriveLetter));
        assert_eq!(parts("./C:/x", WHEEL), Err(Refusal::DriveLetter));
        assert_eq!(parts("a/C:", WHEEL), Ok(vec!["a", "C:"]));
        assert_eq!(parts("C:/x", TAR), Ok(vec!["C:", "x"]));
        assert_eq!(parts("C:\\x", ZIP), Ok(vec!["C:", "x"]));
    }

    #[test]
    fn very_long_paths_are_fine() {
        let long = "a/".repeat(100_000) + "b";
        let out = parts(&long, TAR).unwrap_or_default();
        assert_eq!(out.len(), 100_001);
        assert_eq!(out.last(), Some(&"b"));
        let name = "n".repeat(1 << 20);
        assert_eq!(parts(&name, TAR), Ok(vec![name.as_str()]));
        let escape = "a/".repeat(50_000) + &"../".repeat(50_001);
        assert_eq!(parts(&escape, TAR), Err(Refusal::ParentDir));
        assert_eq!(resolve(&[], escape.as_str(), TAR), Err(Refusal::Escapes));
    }

    #[test]
    fn bytes_need_not_be_utf8() {
        let path: &[u8] = b"pkg/\xff\xfe/x";
        assert_eq!(normalize(path, TAR), Ok(vec![&b"pkg"[..], &b"\xff\xfe"[..], &b"x"[..]]));
    }

    #[test]
    fn utf8_names_split_at_separators_only() {
        assert_eq!(parts("données/ünï\\cödé", ZIP), Ok(vec!["données", "ünï", "cödé"]));
    }

    #[test]
    fn link_targets_resolve_inside_the_root() {
        let base = ["pkg", "docs"];
        assert_eq!(resolve(&base, "../README", TAR), Ok(vec!["pkg", "README"]));
        assert_eq!(resolve(&base, "./x/../y", TAR), Ok(vec!["pkg", "docs", "y"]));
        assert_eq!(resolve(&base, "../..", TAR), Ok(vec![]));
        assert_eq!(resolve(&base, "", TAR), Ok(vec!["pkg", "docs"]));
        assert_eq!(resolve(&[], "pkg/README", TAR), Ok(vec!["pkg", "README"]));
    }

    #[test]
    fn link_targets_that_escape_are_refused() {
        let base = ["pkg", "docs"];
        assert_eq!(resolve(&base, "../../../etc", TAR), Err(Refusal::Escapes));
        assert_eq!(resolve(&base, "../../x/../../y", TAR), Err(Refusal::Escapes));
        assert_eq!(resolve(&[], "..", TAR), Err(Refusal::Escapes));
        assert_eq!(resolve(&base, "/etc/passwd", TAR), Err(Refusal::Absolute));
        assert_eq!(resolve(&base, "x\0", TAR), Err(Refusal::Nul));
        assert_eq!(resolve(&base, "..\\..\\..\\x", ZIP), Err(Refusal::Escapes));
        assert_eq!(resolve(&base, "..\\..\\..\\x", TAR), Ok(vec!["pkg", "docs", "..\\..\\..\\x"]));
    }

    #[test]
    fn absolute_link_targets_restart_from_the_root_when_rooted() {
        let base = ["usr", "bin"];
        assert_eq!(resolve(&base, "/etc/x", ROOTED), Ok(vec!["etc", "x"]));
        assert_eq!(resolve(&base, "/../x", ROOTED), Err(Refusal::Escapes));
    }
}
