//! Explaining "no solution" in words, in pip's vocabulary: `numpy>=2.1` rather than
//! PubGrub's `numpy >=2.1, <∞`, "the requirements" for the root, and why a package has no
//! usable version (not on any index, or none for this platform and Python).

use std::collections::BTreeSet;
use std::ops::Bound;

use pep_types::{PackageName, Version};
use pubgrub::{Derived, External, Map, ReportFormatter, Term};

use crate::provider::{Pkg, VS};

pub(crate) struct Formatter<'a> {
    /// `linux/arm64 (Python 3.9)`.
    pub target: String,
    /// Names no configured index knows.
    pub unknown: &'a BTreeSet<PackageName>,
}

type Ext = External<Pkg, VS, String>;
type Der = Derived<Pkg, VS, String>;

/// A range as the specifiers it came from: `==1.0` (which also takes `1.0+local`), `<=1.0`,
/// `>1.0`, `<2.0`, rather than the bounds that express pip's local and pre-release rules
/// (`<1.0.post0.dev0`, `>1.0.max0`, `<2.0.min0`).
fn range(r: &VS) -> String {
    if r == &VS::full() {
        return String::new();
    }
    if let Some(v) = pep_types::pinned_version(r) {
        return format!("=={v}");
    }
    let segments: Vec<String> = r.iter().map(|(lo, hi)| segment(lo, hi)).collect();
    segments.join(" | ")
}

fn segment(lo: &Bound<Version>, hi: &Bound<Version>) -> String {
    if let (Bound::Included(a), Bound::Included(b)) = (lo, hi) {
        if a == b {
            return format!("=={a}");
        }
    }
    let lower = match lo {
        Bound::Unbounded => None,
        Bound::Included(a) => Some(format!(">={a}")),
        Bound::Excluded(a) if a.max().is_some() => Some(format!(">{}", a.clone().with_max(None))),
        Bound::Excluded(a) => Some(format!(">{a}")),
    };
    let upper = match hi {
        Bound::Unbounded => None,
        Bound::Included(b) => Some(format!("<={b}")),
        Bound::Excluded(b) if b.min().is_some() => Some(format!("<{}", b.clone().with_min(None))),
        Bound::Excluded(b) => match before_locals(b) {
            Some(v) => Some(format!("<={v}")),
            None => Some(format!("<{b}")),
        },
    };
    match (lower, upper) {
        (None, None) => "*".to_string(),
        (Some(l), None) => l,
        (None, Some(u)) => u,
        (Some(l), Some(u)) => format!("{l},{u}"),
    }
}

/// The version `v` is [`pep_types::after_locals`] of, if any (`1.0.post0.dev0` is after
/// `1.0` and its local builds): so `<1.0.post0.dev0` reads as `<=1.0`.
fn before_locals(v: &Version) -> Option<Version> {
    if !v.local().is_empty() || v.dev() != Some(0) {
        return None;
    }
    let base = match v.post() {
        Some(0) => v.clone().with_post(None).with_dev(None),
        Some(n) => v.clone().with_post(Some(n - 1)).with_dev(None),
        None => return None,
    };
    (pep_types::after_locals(&base) == *v).then_some(base)
}

fn pkg(p: &Pkg, r: &VS) -> String {
    match p {
        Pkg::Root => "the requirements".to_string(),
        _ => format!("{p}{}", range(r)),
    }
}

impl Formatter<'_> {
    fn no_versions(&self, p: &Pkg, r: &VS) -> String {
        let name = match p {
            Pkg::Name(n) | Pkg::Extra(n, _) => n,
            Pkg::Root => return "the requirements cannot be chosen".into(),
        };
        if self.unknown.contains(name) {
            format!("{name} is not on any configured index")
        } else if r == &VS::full() {
            format!("no version of {name} can be installed on {}", self.target)
        } else {
            format!("no version of {} can be installed on {}", pkg(p, r), self.target)
        }
    }
}

impl ReportFormatter<Pkg, VS, String> for Formatter<'_> {
    type Output = String;

    fn format_external(&self, external: &Ext) -> String {
        match external {
            External::NotRoot(p, v) => format!("we are solving for {p} {v}"),
            External::NoVersions(p, r) => self.no_versions(p, r),
            External::FromDependencyOf(Pkg::Root, _, p2, r2) => {
                format!("the requirements need {}", pkg(p2, r2))
            }
            External::FromDependencyOf(p1, r1, p2, r2) => {
                format!("{} depends on {}", pkg(p1, r1), pkg(p2, r2))
            }
            External::Custom(p, r, reason) => format!("{} cannot be used: {reason}", pkg(p, r)),
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<VS>>) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] => "no solution exists".into(),
            [(Pkg::Root, Term::Positive(_))] => "the requirements cannot be met".into(),
            [(p, Term::Positive(r))] => format!("{} cannot be used", pkg(p, r)),
            [(p, Term::Negative(r))] => format!("{} is needed", pkg(p, r)),
            [(Pkg::Root, Term::Positive(_)), (p, Term::Positive(r))]
            | [(p, Term::Positive(r)), (Pkg::Root, Term::Positive(_))] => {
                format!("{} cannot be used with the requirements", pkg(p, r))
            }
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => self.format_external(
                &External::FromDependencyOf((*p1).clone(), r1.clone(), (*p2).clone(), r2.clone()),
            ),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => pkg(p, r),
                        Term::Negative(r) => format!("not {}", pkg(p, r)),
                    })
                    .collect();
                format!("{} cannot all be used together", parts.join(", "))
            }
        }
    }

    fn explain_both_external(&self, e1: &Ext, e2: &Ext, terms: &Map<Pkg, Term<VS>>) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(e1),
            self.format_external(e2),
            self.format_terms(terms)
        )
    }

    fn explain_both_ref(
        &self,
        id1: usize,
        d1: &Der,
        id2: usize,
        d2: &Der,
        terms: &Map<Pkg, Term<VS>>,
    ) -> String {
        format!(
            "Because {} ({id1}) and {} ({id2}), {}.",
            self.format_terms(&d1.terms),
            self.format_terms(&d2.terms),
            self.format_terms(terms)
        )
    }

    fn explain_ref_and_external(&self, id: usize, d: &Der, e: &Ext, terms: &Map<Pkg, Term<VS>>) -> String {
        format!(
            "Because {} ({id}) and {}, {}.",
            self.format_terms(&d.terms),
            self.format_external(e),
            self.format_terms(terms)
        )
    }

    fn and_explain_external(&self, e: &Ext, terms: &Map<Pkg, Term<VS>>) -> String {
        format!("And because {}, {}.", self.format_external(e), self.format_terms(terms))
    }

    fn and_explain_ref(&self, id: usize, d: &Der, terms: &Map<Pkg, Term<VS>>) -> String {
        format!("And because {} ({id}), {}.", self.format_terms(&d.terms), self.format_terms(terms))
    }

    fn and_explain_prior_and_external(&self, prior: &Ext, e: &Ext, terms: &Map<Pkg, Term<VS>>) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior),
            self.format_external(e),
            self.format_terms(terms)
        )
    }
}
