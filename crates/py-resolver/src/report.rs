//! Explaining "no solution" in words, in pip's vocabulary: `numpy>=2.1` rather than
//! PubGrub's `numpy >=2.1, <∞`, "the requirements" for the root, and why a package has no
//! usable version (not on any index, or none for this platform and Python).

use std::collections::BTreeSet;

use pep_types::PackageName;
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

fn range(r: &VS) -> String {
    if r == &VS::full() {
        String::new()
    } else if let Some(v) = r.as_singleton() {
        format!("=={v}")
    } else {
        // Ranges print as `>=1.0, <2.0`; PEP 440 writes `>=1.0,<2.0`.
        r.to_string().replace(", ", ",").replace(' ', "")
    }
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
