//! Which versions of a project a target can install, and which file of each it would take.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pep_types::{DistFilename, Target, Version, VersionSpecifiers};
use pypi_client::{DistFile, IndexStrategy, ProjectPage};

use crate::ResolveOptions;

/// One installable version for one target. Its files are those of the shared page, by
/// position: candidates of a big project for several targets cost no copies of its files.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub version: Version,
    /// The page the files are on.
    page: Arc<ProjectPage>,
    /// Every file of this version the target could install, best first (positions in
    /// `page.files`): the first is what the target would install, its best-ranked wheel,
    /// else the sdist.
    files: Box<[u32]>,
    /// All of this version's usable files are yanked (PEP 592).
    pub yanked: bool,
}

impl Candidate {
    /// A candidate of the files at `positions` (best first; at least one) of `page`.
    pub fn new(version: Version, page: Arc<ProjectPage>, positions: Vec<u32>) -> Candidate {
        assert!(!positions.is_empty(), "a candidate has a file");
        let yanked = page.files[positions[0] as usize].yanked.is_some();
        Candidate { version, page, files: positions.into_boxed_slice(), yanked }
    }

    /// The file the target would install.
    pub fn file(&self) -> &DistFile {
        &self.page.files[self.files[0] as usize]
    }

    /// Every file of this version the target could install (for `--generate-hashes`), best first.
    pub fn files(&self) -> impl Iterator<Item = &DistFile> {
        self.files.iter().map(|&i| &self.page.files[i as usize])
    }
}

/// The versions of `page` that `target` can install, in the order they are tried: newest
/// first; with `--prefer-binary`, versions with a wheel for the target before sdist-only
/// ones; with [`IndexStrategy::UnsafeFirstMatch`], every version of an earlier index before
/// any of a later one (a version on several indexes takes the files of the first).
pub fn candidates(page: &Arc<ProjectPage>, target: &Target, options: &ResolveOptions) -> Vec<Candidate> {
    let formats = options.format.formats(&page.name);
    // (rank, yanked) ordering: a non-yanked file beats a yanked one, then wheels by tag rank,
    // then the sdist; build tags break ties (higher wins), then the earlier index.
    let mut by_version: BTreeMap<&Version, Vec<(u32, u32, &DistFile)>> = BTreeMap::new();
    // Files share their Requires-Python values; check each distinct one once.
    let mut python_ok: HashMap<*const VersionSpecifiers, bool> = HashMap::new();
    for (position, file) in page.files.iter().enumerate() {
        if let Some(rp) = &file.requires_python {
            if !*python_ok.entry(Arc::as_ptr(rp)).or_insert_with(|| rp.contains(&target.python)) {
                continue;
            }
        }
        let rank = match &file.parsed {
            DistFilename::Wheel(_) if !formats.wheel => continue,
            DistFilename::Sdist(_) if !formats.sdist => continue,
            DistFilename::Wheel(wheel) => match target.wheel_rank(wheel) {
                Some(rank) => rank,
                None => continue,
            },
            DistFilename::Sdist(_) => u32::MAX,
        };
        by_version.entry(file.parsed.version()).or_default().push((rank, position as u32, file));
    }
    let first_match = options.index_strategy == IndexStrategy::UnsafeFirstMatch;
    let mut out = Vec::with_capacity(by_version.len());
    for (version, mut files) in by_version.into_iter().rev() {
        if first_match {
            let first = files.iter().map(|(_, _, f)| f.index).min().unwrap_or(0);
            files.retain(|(_, _, f)| f.index == first);
        }
        files.sort_by(|(ra, _, fa), (rb, _, fb)| {
            (fa.yanked.is_some(), *ra)
                .cmp(&(fb.yanked.is_some(), *rb))
                .then_with(|| build_tag(fb).cmp(&build_tag(fa)))
                .then_with(|| fa.index.cmp(&fb.index))
                .then_with(|| fa.filename.cmp(&fb.filename))
        });
        let positions = files.iter().map(|(_, position, _)| *position).collect();
        out.push(Candidate::new(version.clone(), Arc::clone(page), positions));
    }
    // Stable sorts: newest first stays the order within each group.
    if options.prefer_binary {
        out.sort_by_key(|c| matches!(c.file().parsed, DistFilename::Sdist(_)));
    }
    if first_match {
        out.sort_by_key(|c| c.file().index);
    }
    out
}

fn build_tag(file: &DistFile) -> (u64, String) {
    match &file.parsed {
        DistFilename::Wheel(w) => match &w.build {
            Some(tag) => {
                let digits: String = tag.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(0), tag[digits.len()..].to_string())
            }
            None => (0, String::new()),
        },
        DistFilename::Sdist(_) => (0, String::new()),
    }
}
