//! PEP 440 version specifiers as PubGrub version ranges, matching the way pip matches them.
//!
//! `pep440_rs` converts specifiers to [`Ranges`] too, but its conversion drops PEP 440's local
//! version rule (`==1.13.1` does not match `1.13.1+cu116`, `<=1.13.1` excludes it) and
//! mishandles `<V` for a post-release `V`. The rules here are those of the `packaging`
//! library that pip vendors (its `Specifier._compare_*` methods); where pip and uv differ, we
//! follow pip. With `prospective` the candidate version, `public` a version without its local
//! label and `base` its epoch and release:
//!
//! | specifier | matches                                                                    |
//! |-----------|----------------------------------------------------------------------------|
//! | `==V`     | `public == V`, or exact equality when `V` has a local label                |
//! | `==V.*`   | the public version starts with `V` (release zero-padded)                   |
//! | `~=V`     | `>=V` and `==P.*`, `P` being `V`'s release without its last number         |
//! | `<=V`     | `public <= V`                                                              |
//! | `>=V`     | `public >= V`                                                              |
//! | `<V`      | `prospective < V`, but no pre-release of `V`'s base unless `V` is one      |
//! | `>V`      | `prospective > V`, but no local build of `V`'s base, nor a post-release unless `V` is one |
//! | `===V`    | string equality (here: exact equality, see [`specifier_range`])            |
//! | `!=`      | the negation of `==`                                                       |
//!
//! Pre-release filtering ("no pre-releases unless asked for or nothing else matches") is not
//! part of a range: resolvers apply it when they pick a version, see [`names_prerelease`].
//!
//! The ranges rely on how `pep440_rs` orders versions within one release: every `V+local`
//! sorts between `V` and [`after_locals`]`(V)`, `V.with_min(0)` below every version of `V`'s
//! release and `V.with_max(0)` above all its post-releases and local builds.

use std::ops::Bound;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use version_ranges::Ranges;

/// Up to which `K` the range of `<V.postN` excludes the dev releases of `.postK` one by one
/// (each is a hole in the range). Past it the dev releases of the higher posts below `N` are
/// let through: dropping them all at once would drop the post-releases they sort among.
pub const POST_DEV_HOLES: u64 = 64;

/// The versions `specs` allow: the intersection of [`specifier_range`] over each specifier.
pub fn specifiers_range(specs: &VersionSpecifiers) -> Ranges<Version> {
    specs.iter().fold(Ranges::full(), |range, spec| range.intersection(&specifier_range(spec)))
}

/// The versions one specifier allows, following pip's rules (see the module documentation),
/// pre-release filtering aside.
///
/// Where pip's rule is not an interval set the range is the closest one, and differs from pip
/// only here:
///
/// - `>V` with `V` a pre-release or dev release (`>1.0a1`, `>1.0.dev1`): pip rejects every
///   post-release and every local build whose base is `V`'s base (`1.0`). The range drops
///   those of `V` itself, of the release `V` is a dev release of (`1.0a1` for `>1.0a1.dev1`)
///   and of the final release (`1.0+cu116`, `1.0.post1`), but lets through those of the
///   pre-releases in between: `1.0a2+cpu`, `1.0rc1.post1`, `1.0rc1.post1.dev1`.
/// - `>V` with `V` a post-release (`>1.0.post1`, `>1.0a1.post1`): pip rejects every local
///   build with `V`'s base. The range drops those of `V` itself and of the final release, but
///   lets through those of later releases of that base: `1.0.post2+cpu`, `1.0a2+cpu`.
/// - `<V.postN`: the dev releases of `.postK` for [`POST_DEV_HOLES`]` < K < N` are let
///   through; pip rejects them as pre-releases of `V`'s base.
/// - `===V`: pip compares the strings case-insensitively, which a range over parsed versions
///   cannot express; the range is exact equality of the parsed version (local label
///   included), so `===1.0` also matches `1.0.0` (pip: only `1.0`).
/// - A specifier built by hand with a local label on an operator PEP 440 forbids it for
///   (`<=`, `<`, `>=`, `>`, `~=`, `.*`) has the label ignored, as have pre-, post- and dev
///   parts on a `.*` prefix; parsing never produces these.
pub fn specifier_range(spec: &VersionSpecifier) -> Ranges<Version> {
    let v = spec.version();
    match spec.operator() {
        Operator::Equal => equal(v),
        Operator::NotEqual => equal(v).complement(),
        Operator::ExactEqual => Ranges::singleton(v.clone()),
        Operator::EqualStar => prefix(v),
        Operator::NotEqualStar => prefix(v).complement(),
        Operator::TildeEqual => compatible(&public(v)),
        Operator::LessThanEqual => Ranges::strictly_lower_than(after_locals(&public(v))),
        Operator::GreaterThanEqual => Ranges::higher_than(public(v)),
        Operator::LessThan => less_than(&public(v)),
        Operator::GreaterThan => greater_than(&public(v)),
    }
}

/// The version `range` pins when it is what `==V` or `===V` produces: a single version, or
/// `V` with all its local builds. PEP 592 lets a yanked release be chosen only for such pins.
///
/// pip asks whether any specifier is `==`/`===`, which a range no longer tells: here
/// `==1.0,!=1.0+cpu` pins nothing, and `>=1.0,<=1.0` pins `1.0`.
pub fn pinned_version(range: &Ranges<Version>) -> Option<Version> {
    if let Some(v) = range.as_singleton() {
        return Some(v.clone());
    }
    let mut segments = range.iter();
    let (Bound::Included(low), Bound::Excluded(high)) = segments.next()? else {
        return None;
    };
    let plain = !low.is_local() && low.min().is_none() && low.max().is_none();
    (segments.next().is_none() && plain && *high == after_locals(low)).then(|| low.clone())
}

/// Whether `specs` name a pre-release the way that makes pip consider pre-releases of the
/// package even when a final release matches (`packaging`'s `SpecifierSet.prereleases`):
/// an `==`, `===`, `>=`, `<=` or `~=` specifier whose version is a pre- or dev release.
/// `>1.0rc1`, `<1.0rc1` and `!=1.0rc1` do not count.
pub fn names_prerelease(specs: &VersionSpecifiers) -> bool {
    specs.iter().any(|spec| {
        matches!(
            spec.operator(),
            Operator::Equal
                | Operator::ExactEqual
                | Operator::GreaterThanEqual
                | Operator::LessThanEqual
                | Operator::TildeEqual
        ) && spec.version().any_prerelease()
    })
}

/// The smallest version above `v` and all its local builds (`v` without a local label):
/// the next dev release if `v` is one, else the first dev release of the next post-release.
/// Numbers at `u64::MAX` saturate.
pub fn after_locals(v: &Version) -> Version {
    match v.dev() {
        Some(dev) => v.clone().with_dev(Some(dev.saturating_add(1))),
        None => {
            let post = v.post().map_or(0, |p| p.saturating_add(1));
            v.clone().with_post(Some(post)).with_dev(Some(0))
        }
    }
}

fn public(v: &Version) -> Version {
    v.clone().without_local()
}

/// `v`'s epoch and release: the final release it is a pre-, post- or dev release of.
fn base(v: &Version) -> Version {
    Version::new(v.release().iter().copied()).with_epoch(v.epoch())
}

/// Everything but the versions from just above `low` to `high`: a hole after `low`.
fn excluded(low: Version, high: Bound<Version>) -> Ranges<Version> {
    Ranges::from_range_bounds((Bound::Excluded(low), high)).complement()
}

fn equal(v: &Version) -> Ranges<Version> {
    if v.is_local() {
        Ranges::singleton(v.clone())
    } else {
        Ranges::between(v.clone(), after_locals(v))
    }
}

/// `==V.*`: every version whose release starts with `V`'s, padding with zeros, so `==1.1.*`
/// holds `1.1`, `1.1.0rc1`, `1.1.5.post1+cpu` and not `1.10`.
fn prefix(v: &Version) -> Ranges<Version> {
    let low = base(v);
    let mut release = low.release().to_vec();
    if let Some(last) = release.last_mut() {
        *last = last.saturating_add(1);
    }
    let high = low.clone().with_release(release);
    Ranges::between(low.with_min(Some(0)), high.with_min(Some(0)))
}

/// `~=V` = `>=V, ==P.*`; `~=2.2` = `>=2.2, ==2.*`, `~=1.4.5a4` = `>=1.4.5a4, ==1.4.*`.
fn compatible(v: &Version) -> Ranges<Version> {
    let at_least = Ranges::higher_than(v.clone());
    match v.release() {
        [rest @ .., _] if !rest.is_empty() => {
            at_least.intersection(&prefix(&Version::new(rest.iter().copied()).with_epoch(v.epoch())))
        }
        // Parsing rejects `~=` with one release number; read it as `>=`.
        _ => at_least,
    }
}

fn less_than(v: &Version) -> Ranges<Version> {
    if v.any_prerelease() {
        return Ranges::strictly_lower_than(v.clone());
    }
    let b = base(v);
    // Below every version of the base release: its pre- and dev releases are out.
    let mut range = Ranges::strictly_lower_than(b.clone().with_min(Some(0)));
    let Some(n) = v.post() else { return range };
    // `<B.postN`: the final and the posts below N with their local builds, but not their dev
    // releases (pre-releases of B to pip), which sort just below each post.
    range = range.union(&Ranges::between(b.clone(), after_locals(&b)));
    let exact = n.min(POST_DEV_HOLES);
    for k in 0..exact {
        let post = b.clone().with_post(Some(k));
        range = range.union(&Ranges::between(post.clone(), after_locals(&post)));
    }
    if exact < n {
        let from = b.clone().with_post(Some(exact));
        range = range.union(&Ranges::between(from, b.with_post(Some(n)).with_dev(Some(0))));
    }
    range
}

fn greater_than(v: &Version) -> Ranges<Version> {
    let b = base(v);
    if v.is_post() {
        // Post-releases of the base are fine; local builds of the base are not.
        let mut range = Ranges::higher_than(after_locals(v));
        if v.is_dev() {
            let release = v.clone().with_dev(None);
            range = range.intersection(&excluded(release.clone(), Bound::Excluded(after_locals(&release))));
        }
        if v.is_pre() {
            range = range.intersection(&excluded(b.clone(), Bound::Excluded(after_locals(&b))));
        }
        return range;
    }
    if !v.any_prerelease() {
        // Above every post-release and local build of `V`.
        return Ranges::strictly_higher_than(v.clone().with_max(Some(0)));
    }
    // A pre- or dev release: neither post-releases nor local builds of the base.
    let mut range = if v.is_dev() {
        let mut range = Ranges::higher_than(after_locals(v));
        if v.is_pre() {
            let release = v.clone().with_dev(None);
            let max = release.clone().with_max(Some(0));
            range = range.intersection(&excluded(release, Bound::Included(max)));
        }
        range
    } else {
        Ranges::strictly_higher_than(v.clone().with_max(Some(0)))
    };
    let max = b.clone().with_max(Some(0));
    range = range.intersection(&excluded(b, Bound::Included(max)));
    range
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    fn range(specs: &str) -> Ranges<Version> {
        specifiers_range(&VersionSpecifiers::from_str(specs).unwrap())
    }

    #[track_caller]
    fn check(specs: &str, yes: &[&str], no: &[&str]) {
        let r = range(specs);
        for s in yes {
            assert!(r.contains(&v(s)), "{specs} should match {s} (range {r})");
        }
        for s in no {
            assert!(!r.contains(&v(s)), "{specs} should not match {s} (range {r})");
        }
    }

    #[test]
    fn version_matching() {
        // PEP 440 "Version matching": zero padding, local labels ignored, prefix matching.
        check("==1.1", &["1.1", "1.1.0", "1.1+local", "1.1.0+cu116"], &["1.1.post1", "1.1a1", "1.1.1"]);
        check("==1.1.post1", &["1.1.post1", "1.1.post1+x"], &["1.1", "1.1.post2", "1.1.post1.dev1"]);
        check("==1.1.*", &["1.1", "1.1.post1", "1.1.0rc1", "1.1.5+cpu", "1.1.dev0"], &["1.10", "1.2", "1"]);
        check("==1.1.0.*", &["1.1", "1.1rc1", "1.1.0.5"], &["1.1.1"]);
        check("==1.1.5.*", &["1.1.5.post1"], &["1.1", "1.1.6"]);
        check("==1!1.*", &["1!1.5"], &["1.5"]);
        check("==1.0.dev1", &["1.0.dev1", "1.0.dev1+x"], &["1.0.dev2", "1.0.dev0"]);
        // A local label in the specifier: strict equality.
        check("==1.1+cu116", &["1.1+cu116", "1.1.0+cu116"], &["1.1", "1.1+cpu", "1.1+cu116.1"]);
    }

    #[test]
    fn version_exclusion() {
        check("!=1.1", &["1.1.post1", "1.0", "1.1.1"], &["1.1", "1.1.0", "1.1+local"]);
        check("!=1.1.*", &["1.10", "1.2", "1.0", "1"], &["1.1", "1.1.post1", "1.1.5+x"]);
        check("!=1.1+cu116", &["1.1", "1.1+cpu"], &["1.1+cu116"]);
    }

    #[test]
    fn compatible_release() {
        // `~=2.2` = `>=2.2, ==2.*`; `~=1.4.5` = `>=1.4.5, ==1.4.*`.
        check("~=2.2", &["2.2", "2.3", "2.2.post3", "2.9+cpu"], &["2.1", "3.0", "3.0a1", "2.2a1"]);
        check("~=1.4.5", &["1.4.5", "1.4.6"], &["1.5", "1.4.4", "1.4.5rc1"]);
        // Pre-, post- and dev parts of V count for `>=` but not for the prefix.
        check("~=2.2.post3", &["2.2.post3", "2.3", "2.9"], &["2.2.post2", "2.2", "3.0"]);
        check("~=1.4.5a4", &["1.4.5a4", "1.4.5", "1.4.6", "1.4.5b1"], &["1.4.5a3", "1.5", "1.4.4"]);
        check("~=1.4.5.0", &["1.4.5", "1.4.5.1"], &["1.4.6"]);
        check("~=1!2.2", &["1!2.5"], &["2.5", "1!3.0"]);
        assert_eq!(range("~=2.2"), range(">=2.2, ==2.*"));
        assert_eq!(range("~=1.4.5a4"), range(">=1.4.5a4, ==1.4.*"));
        assert_eq!(range("~=2.2.post3"), range(">=2.2.post3, ==2.*"));
    }

    #[test]
    fn inclusive_ordered_comparison() {
        // Local labels are dropped from the candidate, so local builds of the bound are inside.
        check(
            "<=1.13.1",
            &["1.13.1", "1.13.1+cu116", "1.13.0.post1", "1.13.1rc1"],
            &["1.13.1.post0", "1.14"],
        );
        check(">=1.13.1", &["1.13.1", "1.13.1+cu116", "1.13.1.post1"], &["1.13.1rc1", "1.13.0+cu116"]);
        check("<=1.0.dev1", &["1.0.dev1+x", "1.0.dev0"], &["1.0.dev2", "1.0a1"]);
        check("<=1.0.post1", &["1.0.post1+x", "1.0.post1.dev3"], &["1.0.post2.dev0", "1.0.post2"]);
    }

    #[test]
    fn exclusive_ordered_comparison() {
        // PEP 440: `>1.7` allows 1.7.1 but not 1.7.0.post1; `>1.7.post2` allows 1.7.post3.
        check(">1.7", &["1.7.1", "1.8", "1.7.1+cpu"], &["1.7", "1.7.0.post1", "1.7+local", "1.7.post2+x"]);
        check(
            ">1.7.post2",
            &["1.7.post3", "1.7.post3.dev1", "1.7.1a1"],
            &["1.7.post2", "1.7.post2+x", "1.7"],
        );
        // `<2.0` rejects 2.0b1 and the other pre-releases of 2.0; not when V is one itself.
        check(
            "<2.0",
            &["1.9", "1.9.post1", "1.9+local"],
            &["2.0", "2.0b1", "2.0.dev0", "2.0rc1+x", "2.0a1.post1"],
        );
        check("<2.0rc1", &["2.0b1", "2.0.dev0", "1.9"], &["2.0rc1", "2.0rc1+x"]);
        // The pre-release rule compares the base with its epoch.
        check("<1!2.0", &["2.0rc1", "1!1.9"], &["1!2.0rc1"]);
    }

    #[test]
    fn less_than_a_post_release() {
        // pip: `1.0.post1.dev0` is a pre-release of 1.0 (it has a dev part), so `<1.0.post2`
        // rejects it while taking 1.0.post1 and the local builds below the bound.
        check(
            "<1.0.post2",
            &["0.9", "1.0", "1.0+cpu", "1.0.post0", "1.0.post1", "1.0.post1+cu116"],
            &["1.0rc1", "1.0.dev3", "1.0.post0.dev0", "1.0.post1.dev0", "1.0.post2.dev5", "1.0.post2"],
        );
        check("<1!1.0.post1", &["1!1.0", "1!1.0.post0"], &["1!1.0.post0.dev1", "1!1.0rc1"]);
        // Past POST_DEV_HOLES the dev releases of the higher posts get through.
        let r = range("<1.0.post100");
        assert!(!r.contains(&v("1.0.post64.dev1")) && r.contains(&v("1.0.post64")));
        assert!(r.contains(&v("1.0.post65.dev1")) && r.contains(&v("1.0.post99")));
        assert!(!r.contains(&v("1.0.post100.dev0")) && !r.contains(&v("1.0.post100")));
        assert!(r.iter().count() <= POST_DEV_HOLES as usize + 3, "{r}");
    }

    #[test]
    fn arbitrary_equality() {
        check("===1.0", &["1.0"], &["1.0+local", "1.0.post1"]);
        check("===1.0+cu116", &["1.0+cu116"], &["1.0", "1.0+cpu"]);
    }

    #[test]
    fn marqo_local_builds() {
        // `torch==1.13.1` must find the `+cu116` build, and prefer it: it sorts above 1.13.1.
        check("==0.13.1", &["0.13.1", "0.13.1+cu116"], &["0.13.1.post1", "0.13.2"]);
        assert!(v("0.13.1+cu116") > v("0.13.1"));
        check("==1.13.1+cu116", &["1.13.1+cu116"], &["1.13.1", "1.13.1+cpu", "1.13.1+cu117"]);
        check("!=1.13.1", &["1.13.0", "1.13.1.post1"], &["1.13.1", "1.13.1+cu116"]);
        check(">=1.13,<=1.13.1", &["1.13.1+cu116"], &["1.13.2"]);
    }

    #[test]
    fn pins() {
        assert_eq!(pinned_version(&range("==1.13.1")), Some(v("1.13.1")));
        assert_eq!(pinned_version(&range("==1.13.1+cu116")), Some(v("1.13.1+cu116")));
        assert_eq!(pinned_version(&range("===1.0")), Some(v("1.0")));
        assert_eq!(pinned_version(&range("==1.0.dev1")), Some(v("1.0.dev1")));
        assert_eq!(pinned_version(&range(">=1.0,==1.0.post1")), Some(v("1.0.post1")));
        // A range cannot tell `>=1.0,<=1.0` from `==1.0` (pip would not call it a pin).
        assert_eq!(pinned_version(&range(">=1.0,<=1.0")), Some(v("1.0")));
        for unpinned in [">=1.0", "==1.0.*", "<=1.0", "~=1.0", "!=1.0", ">1.0,<1.1", "==1.0,!=1.0+cpu"] {
            assert_eq!(pinned_version(&range(unpinned)), None, "{unpinned}");
        }
        assert_eq!(pinned_version(&Ranges::empty()), None);
        assert_eq!(pinned_version(&Ranges::full()), None);
    }

    #[test]
    fn after_locals_is_the_next_version() {
        for (version, next) in [
            ("1.0", "1.0.post0.dev0"),
            ("1.0.dev3", "1.0.dev4"),
            ("1.0rc1", "1.0rc1.post0.dev0"),
            ("1.0.post2", "1.0.post3.dev0"),
        ] {
            let (version, next) = (v(version), v(next));
            assert_eq!(after_locals(&version), next);
            assert!(v(&format!("{version}+zzz.999")) < next);
        }
    }

    #[test]
    fn prerelease_names() {
        let names = |s: &str| names_prerelease(&VersionSpecifiers::from_str(s).unwrap());
        for yes in [">=1.0rc1", "==2.0b1", "<=1.0.dev0", "~=1.4.5a4", "===1.0a1", ">=1.0,<=2.0.post1.dev1"] {
            assert!(names(yes), "{yes}");
        }
        for no in [">=1.0", ">1.0rc1", "<1.0rc1", "!=1.0rc1", "==1.0.post1", ""] {
            assert!(!names(no), "{no}");
        }
    }

    #[rustfmt::skip]
    const VERSIONS: &[&str] = &[
        "0.9", "0.9+local", "1", "1.0.dev0", "1.0.dev1", "1.0.dev1+loc", "1.0.dev2", "1.0a1", "1.0a1+loc",
        "1.0a1.post1", "1.0a2.dev1", "1.0a2", "1.0a2+cpu", "1.0b1", "1.0rc1", "1.0rc1.post1.dev1",
        "1.0", "1.0.0", "1.0+cu116", "1.0+cpu", "1.0.post0.dev0", "1.0.post0", "1.0.post1.dev0",
        "1.0.post1", "1.0.post1+loc", "1.0.post2", "1.0.post2+loc", "1.0.post3.dev1", "1.0.1",
        "1.0.1+loc", "1.0.1.post1", "1.1a1", "1.1", "1.1.0", "1.1+local", "1.1.post1", "1.1.5",
        "1.2.dev0", "1.2", "1.10", "2.0b1", "2.0", "2.0.post1", "1!0.5", "1!1.0", "1!1.0rc1",
        "0.13.1", "0.13.1+cu116", "1.13.1", "1.13.1+cu116", "1.13.1.post1", "1.4.5a4", "1.4.5",
        "1.4.6", "1.5", "2.2", "2.2.post3", "2.3", "3.0", "1.7", "1.7.0.post1", "1.7.1", "1.7.post2",
        "1.7.post3", "1.7+local",
    ];

    #[rustfmt::skip]
    const SPECIFIERS: &[&str] = &[
        "==1.0", "==1.0.0", "==1.0+cu116", "!=1.0", "!=1.0+cu116", "==1.0.*", "!=1.0.*", "==1.1.*",
        "==1.1.0.*", "==1.1.5.*", "==1.*", "!=1.1.*", "==1!1.*", "~=1.0", "~=1.0.0", "~=2.2",
        "~=1.4.5a4", "~=2.2.post3", "<=1.0", ">=1.0", "<1.0", ">1.0", "<1.0.post2", ">1.0.post1",
        ">1.0a1", ">1.0.dev1", ">1.0a1.dev1", ">1.0a1.post1", ">1.0.post1.dev0", "<1.0.post1.dev0",
        "<1.0rc1", "<=1.0rc1", ">=1.0rc1", "===1.0", "===1.0+cu116", ">1.7", ">1.7.post2", "<2.0",
        "==0.13.1", "==1.13.1+cu116", "!=1.13.1", "<1!1.0", ">1!0.5", "<1.1", "<=1.0.post1",
        ">=1.0.post1", "==1.0.post1", "==1.0a1",
    ];

    /// Pairs of [`SPECIFIERS`] × [`VERSIONS`] where `pep440_rs`'s `VersionSpecifier::contains`
    /// and pip (`packaging`'s `Specifier.contains` with pre-releases allowed) disagree.
    #[rustfmt::skip]
    const PEP440_RS_DIFFERS_FROM_PIP: &[(&str, &[&str])] = &[
        // pep440_rs matches a prefix without padding the candidate's release with zeros, so
        // `1` "starts with" `1.1` and `1.1` with `1.1.5`.
        ("==1.1.*", &["1"]),
        ("==1.1.0.*", &["1"]),
        ("==1.1.5.*", &["1", "1.1", "1.1a1", "1.1+local", "1.1.post1"]),
        ("!=1.1.*", &["1"]),
        // `>V`: pep440_rs drops the candidate's local label before it checks for one, so it
        // takes the local builds of V's base that pip rejects.
        (">1.0.post1", &["1.0.post2+loc"]),
        (">1.0a1", &["1.0a2+cpu", "1.0+cu116", "1.0+cpu"]),
        (">1.0.dev1", &["1.0a1+loc", "1.0a2+cpu", "1.0+cu116", "1.0+cpu"]),
        (">1.0a1.dev1", &["1.0a1+loc", "1.0a2+cpu", "1.0+cu116", "1.0+cpu"]),
        (">1.0a1.post1", &["1.0a2+cpu", "1.0+cu116", "1.0+cpu", "1.0.post1+loc", "1.0.post2+loc"]),
        (">1.0.post1.dev0", &["1.0.post1+loc", "1.0.post2+loc"]),
        // `<V` with V itself a pre-release: pip takes the earlier pre-releases of V's base,
        // pep440_rs rejects them.
        (
            "<1.0rc1",
            &[
                "1.0.dev0", "1.0.dev1", "1.0.dev1+loc", "1.0.dev2", "1.0a1", "1.0a1+loc", "1.0a1.post1",
                "1.0a2.dev1", "1.0a2", "1.0a2+cpu", "1.0b1",
            ],
        ),
        (
            "<1.0.post1.dev0",
            &[
                "1.0.dev0", "1.0.dev1", "1.0.dev1+loc", "1.0.dev2", "1.0a1", "1.0a1+loc", "1.0a1.post1",
                "1.0a2.dev1", "1.0a2", "1.0a2+cpu", "1.0b1", "1.0rc1", "1.0rc1.post1.dev1", "1.0.post0.dev0",
            ],
        ),
        // `<V`: pep440_rs compares the base release without its epoch, so `<1!1.0` rejects
        // the pre-releases of `0!1.0`.
        (
            "<1!1.0",
            &[
                "1.0.dev0", "1.0.dev1", "1.0.dev1+loc", "1.0.dev2", "1.0a1", "1.0a1+loc", "1.0a1.post1",
                "1.0a2.dev1", "1.0a2", "1.0a2+cpu", "1.0b1", "1.0rc1", "1.0rc1.post1.dev1", "1.0.post0.dev0",
                "1.0.post1.dev0", "1.0.post3.dev1",
            ],
        ),
    ];

    /// Pairs where our ranges differ from pip: the approximations [`specifier_range`] documents.
    #[rustfmt::skip]
    const RANGE_DIFFERS_FROM_PIP: &[(&str, &[&str])] = &[
        // Local builds of later releases of the base of a post-release V.
        (">1.0.post1", &["1.0.post2+loc"]),
        (">1.0.post1.dev0", &["1.0.post2+loc"]),
        (">1.0a1.post1", &["1.0a2+cpu", "1.0.post1+loc", "1.0.post2+loc"]),
        // Local builds and post-releases of the pre-releases between V and its base.
        (">1.0a1", &["1.0a2+cpu", "1.0rc1.post1.dev1"]),
        (">1.0.dev1", &["1.0a1+loc", "1.0a1.post1", "1.0a2+cpu", "1.0rc1.post1.dev1"]),
        (">1.0a1.dev1", &["1.0a2+cpu", "1.0rc1.post1.dev1"]),
        // `===` compares parsed versions, which pad with zeros; pip compares strings.
        ("===1.0", &["1", "1.0.0"]),
    ];

    fn listed(list: &[(&str, &[&str])], spec: &str, version: &str) -> bool {
        list.iter().any(|(s, vs)| *s == spec && vs.contains(&version))
    }

    #[test]
    fn ranges_agree_with_pip_across_a_matrix() {
        for list in [PEP440_RS_DIFFERS_FROM_PIP, RANGE_DIFFERS_FROM_PIP] {
            for (spec, versions) in list {
                assert!(SPECIFIERS.contains(spec), "{spec} is not in the matrix");
                for version in *versions {
                    assert!(VERSIONS.contains(version), "{version} is not in the matrix");
                }
            }
        }
        let mut wrong = Vec::new();
        for spec in SPECIFIERS {
            let parsed = VersionSpecifier::from_str(spec).unwrap();
            let r = specifier_range(&parsed);
            for version in VERSIONS {
                let parsed_version = v(version);
                let pip =
                    parsed.contains(&parsed_version) != listed(PEP440_RS_DIFFERS_FROM_PIP, spec, version);
                let expected = pip != listed(RANGE_DIFFERS_FROM_PIP, spec, version);
                if r.contains(&parsed_version) != expected {
                    wrong.push(format!("{spec} {version}: expected {expected} (range {r})"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn ranges_intersect() {
        check(
            ">=1.0,<2.0,!=1.5",
            &["1.0", "1.4+cpu", "1.9.post1"],
            &["1.5", "1.5+cpu", "2.0", "2.0rc1", "0.9"],
        );
        assert_eq!(range(""), Ranges::full());
    }
}
