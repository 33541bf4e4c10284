//! Where a rule reads attribute values from.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

/// A record's attributes as a rule sees them: text values by name.
///
/// Implemented for `HashMap` and `BTreeMap` with `String`/`&str` keys and
/// values, for slices, arrays and `Vec`s of `(key, value)` pairs (a linear
/// scan; the first pair with the key wins), for [`SortedAttributes`] (a
/// binary search), for references, and for pairs of sources `(A, B)`, which
/// look in `A` first and then in `B` — span attributes over resource
/// attributes, say.
pub trait Attributes {
    /// The value of `key`, or `None` when the record does not have it.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<T: Attributes + ?Sized> Attributes for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl<K, V, S> Attributes for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K, V> Attributes for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Attributes for [(K, V)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Attributes for [(K, V); N] {
    fn get(&self, key: &str) -> Option<&str> {
        Attributes::get(self.as_slice(), key)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Attributes for Vec<(K, V)> {
    fn get(&self, key: &str) -> Option<&str> {
        Attributes::get(self.as_slice(), key)
    }
}

impl<A: Attributes, B: Attributes> Attributes for (A, B) {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).or_else(|| self.1.get(key))
    }
}

/// `(key, value)` pairs sorted by key (byte order), looked up by binary
/// search once there are more than [`SortedAttributes::LINEAR_UP_TO`] of
/// them. With duplicate keys the first of them wins, as for a plain slice.
///
/// Small records are scanned instead: a scan rejects most keys on their
/// length alone, while every binary-search step is a full comparison and an
/// unpredictable branch — at 17 attributes the scan measured about 4× faster
/// (`benches/rule_eval.rs`).
///
/// If the pairs are not sorted a lookup may miss a key that is there; it
/// never panics. Debug builds check the order.
#[derive(Debug, Clone, Copy)]
pub struct SortedAttributes<'a, K, V>(&'a [(K, V)]);

impl<'a, K: AsRef<str>, V: AsRef<str>> SortedAttributes<'a, K, V> {
    /// Up to this many pairs, lookups scan; beyond, they binary-search. A
    /// judgement from the 17-attribute measurement, not a measured
    /// crossover.
    pub const LINEAR_UP_TO: usize = 32;

    /// Wraps pairs that are sorted by key.
    pub fn new(pairs: &'a [(K, V)]) -> Self {
        debug_assert!(
            pairs.windows(2).all(|w| w[0].0.as_ref() <= w[1].0.as_ref()),
            "SortedAttributes::new: pairs are not sorted by key"
        );
        SortedAttributes(pairs)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Attributes for SortedAttributes<'_, K, V> {
    fn get(&self, key: &str) -> Option<&str> {
        if self.0.len() <= Self::LINEAR_UP_TO {
            return Attributes::get(self.0, key);
        }
        let i = self.0.partition_point(|(k, _)| k.as_ref() < key);
        self.0
            .get(i)
            .filter(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups(attrs: &dyn Attributes) -> [Option<&str>; 3] {
        [attrs.get("a"), attrs.get("b"), attrs.get("zz")]
    }

    #[test]
    fn every_source_answers_alike() {
        let pairs = [("a", "1"), ("b", "2"), ("b", "shadowed")];
        let want = [Some("1"), Some("2"), None];
        assert_eq!(lookups(&pairs), want);
        assert_eq!(lookups(&pairs.to_vec()), want);
        assert_eq!(lookups(&&pairs[..]), want);
        assert_eq!(lookups(&SortedAttributes::new(&pairs)), want);
        let owned: HashMap<String, String> = pairs[..2]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(lookups(&owned), want);
        let tree: BTreeMap<&str, &str> = pairs[..2].iter().copied().collect();
        assert_eq!(lookups(&tree), want);
        let layered = ([("a", "1")], [("a", "hidden"), ("b", "2")]);
        assert_eq!(lookups(&layered), want);
    }

    #[test]
    fn large_sorted_records_binary_search_alike() {
        let mut pairs: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{i:03}"), format!("v{i}")))
            .collect();
        pairs.insert(50, ("k049".to_owned(), "second".to_owned()));
        let sorted = SortedAttributes::new(&pairs);
        assert!(pairs.len() > SortedAttributes::<String, String>::LINEAR_UP_TO);
        for (k, _) in &pairs {
            assert_eq!(sorted.get(k), Attributes::get(&pairs[..], k), "{k}");
        }
        assert_eq!(sorted.get("k049"), Some("v49"));
        assert_eq!(sorted.get("k"), None);
        assert_eq!(sorted.get("k0999"), None);
        assert_eq!(sorted.get("zzz"), None);
    }
}
