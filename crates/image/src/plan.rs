//! The layer plan: which artifacts share a layer.

use sha2::{Digest, Sha256};

/// Groups named artifacts into layers: each artifact larger than `big_threshold` bytes gets
/// a layer of its own; the others go into one of `buckets` buckets chosen by the first
/// eight bytes of the sha256 of the name, so the plan is the same on every machine and
/// adding, removing or changing one artifact changes one layer only.
///
/// The output is sorted: the non-empty buckets in bucket order, each sorted by name, then
/// the big artifacts by name. Pass names in one spelling (normalised package names): the
/// bucket depends on the exact bytes. `buckets` of 0 is taken as 1.
pub fn plan_layers<N: AsRef<str>>(
    items: &[(N, u64)],
    buckets: usize,
    big_threshold: u64,
) -> Vec<Vec<String>> {
    let buckets = buckets.max(1);
    let mut small: Vec<Vec<String>> = vec![Vec::new(); buckets];
    let mut big: Vec<Vec<String>> = Vec::new();
    for (name, size) in items {
        let name = name.as_ref().to_string();
        if *size > big_threshold {
            big.push(vec![name]);
        } else {
            small[bucket(&name, buckets)].push(name);
        }
    }
    for bucket in &mut small {
        bucket.sort();
        bucket.dedup();
    }
    big.sort();
    big.dedup();
    small.into_iter().filter(|bucket| !bucket.is_empty()).chain(big).collect()
}

/// The bucket of `name`: the first eight bytes of its sha256, big-endian, modulo `buckets`.
fn bucket(name: &str, buckets: usize) -> usize {
    let hash = Sha256::digest(name.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) % buckets as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Vec<(String, u64)> {
        names.iter().map(|name| (name.to_string(), 10)).collect()
    }

    const NAMES: &[&str] = &[
        "numpy",
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset-normalizer",
        "pillow",
        "six",
        "packaging",
        "pyyaml",
        "tqdm",
        "filelock",
        "regex",
        "tokenizers",
        "safetensors",
        "fsspec",
    ];

    #[test]
    fn big_items_get_their_own_layer_and_output_is_sorted() {
        let plan = plan_layers(&[("torch", 800), ("b", 1), ("a", 1), ("onnxruntime", 500)], 1, 100);
        assert_eq!(plan, vec![vec!["a", "b"], vec!["onnxruntime"], vec!["torch"]]);
    }

    #[test]
    fn bucket_is_stable_across_runs() {
        // Pinned values (computed independently): a change here moves every bucket.
        let got: Vec<usize> = ["numpy", "requests", "torch"].iter().map(|name| bucket(name, 16)).collect();
        assert_eq!(got, [10, 14, 9]);
    }

    #[test]
    fn input_order_does_not_matter() {
        let mut reversed = items(NAMES);
        reversed.reverse();
        assert_eq!(plan_layers(&items(NAMES), 4, 100), plan_layers(&reversed, 4, 100));
    }

    #[test]
    fn adding_or_removing_one_item_changes_only_its_layer() {
        let before = plan_layers(&items(NAMES), 6, 100);
        let mut more = NAMES.to_vec();
        more.push("transformers");
        let after = plan_layers(&items(&more), 6, 100);
        let changed: Vec<_> = after.iter().filter(|layer| !before.contains(layer)).collect();
        assert_eq!(changed.len(), 1, "{before:?} -> {after:?}");
        assert!(changed[0].contains(&"transformers".to_string()));
        let removed: Vec<_> = before.iter().filter(|layer| !after.contains(layer)).collect();
        assert_eq!(removed.len(), 1);

        let fewer: Vec<&str> = NAMES.iter().copied().filter(|name| *name != "six").collect();
        let after = plan_layers(&items(&fewer), 6, 100);
        let gone: Vec<_> = before.iter().filter(|layer| !after.contains(layer)).collect();
        assert_eq!(gone.len(), 1);
        assert!(gone[0].contains(&"six".to_string()));
        assert!(after.iter().filter(|layer| !before.contains(layer)).count() <= 1);
    }

    #[test]
    fn zero_buckets_means_one() {
        assert_eq!(plan_layers(&items(&["b", "a"]), 0, 100), vec![vec!["a", "b"]]);
    }
}
