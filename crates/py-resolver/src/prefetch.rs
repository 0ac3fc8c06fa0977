//! Prefetching the likely graph ahead of the solver.
//!
//! The solver asks for one package at a time and waits; most of a cold resolution is that
//! waiting. As soon as a requirement is seen, its page and the metadata of the version the
//! solver would likely pick are fetched, and when that metadata arrives, the same is done for
//! its requirements, and theirs: the whole likely graph is in flight while the solver is
//! still at the top (or waiting for an sdist's backend). Nothing here decides anything: the
//! solver asks for what it needs as always, and finds it started or done. A guess that the
//! solver does not take costs one page and one metadata read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use pep_types::{
    names_prerelease, specifiers_range, ExtraName, PackageName, Req, Target, Version, VersionOrUrl,
};

use crate::candidates::candidates;
use crate::provider::{pick, VS};
use crate::source::IndexSource;
use crate::ResolveOptions;

/// The prefetcher of one target's resolution.
pub(crate) struct Prefetcher {
    target: Arc<Target>,
    options: ResolveOptions,
    /// Existing pins that are kept (not `--upgrade`d): the version the solver would try first.
    preferences: HashMap<PackageName, Version>,
    constraints: HashMap<PackageName, VS>,
    /// A package (or one of its extras) whose requirements have been started.
    seen: Mutex<HashSet<(PackageName, Option<ExtraName>)>>,
}

impl Prefetcher {
    pub(crate) fn new(
        target: Arc<Target>,
        options: &ResolveOptions,
        preferences: &HashMap<PackageName, Version>,
        constraints: &HashMap<PackageName, VS>,
    ) -> Arc<Prefetcher> {
        let preferences = preferences
            .iter()
            .filter(|(name, _)| !options.upgrade_all && !options.upgrade.contains(*name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        Arc::new(Prefetcher {
            target,
            options: options.clone(),
            preferences,
            constraints: constraints.clone(),
            seen: Mutex::default(),
        })
    }

    /// Starts on `req` (whose marker holds): its page, the likely version's metadata, and
    /// then the same for what that version requires (with `req`'s extras).
    pub(crate) fn start(self: &Arc<Self>, source: &Arc<IndexSource>, req: &Req) {
        let new_extras: Vec<ExtraName> = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let base_new = seen.insert((req.name.clone(), None));
            let extras: Vec<ExtraName> = req
                .extras
                .iter()
                .filter(|e| seen.insert((req.name.clone(), Some((*e).clone()))))
                .cloned()
                .collect();
            if !base_new && extras.is_empty() {
                return;
            }
            extras
        };
        let (mut range, allow_pre) = match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(spec)) => {
                (specifiers_range(spec), self.options.prereleases || names_prerelease(spec))
            }
            _ => (VS::full(), self.options.prereleases),
        };
        if let Some(c) = self.constraints.get(&req.name) {
            range = range.intersection(c);
        }
        let me = Arc::clone(self);
        let source2 = Arc::clone(source);
        let name = req.name.clone();
        source.spawn(async move {
            let Ok(Some(page)) = source2.page(&name).await else { return };
            let cands = candidates(&page, &me.target, &me.options);
            let Some(chosen) = pick(&cands, &range, me.preferences.get(&name), allow_pre) else { return };
            let Ok(md) = source2.metadata(chosen.file()).await else { return };
            if md.requires_python.as_ref().is_some_and(|rp| !rp.contains(&me.target.python)) {
                return;
            }
            let env = me.target.markers();
            for dep in &md.requires_dist {
                if dep.name == name && dep.extras.is_empty() {
                    continue;
                }
                let active = dep.marker.evaluate(env, &[])
                    || new_extras.iter().any(|e| dep.marker.evaluate(env, std::slice::from_ref(e)));
                if active {
                    me.start(&source2, dep);
                }
            }
        });
    }
}
