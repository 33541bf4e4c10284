//! The fixed-depth prefix tree: token count first, then the leading tokens.
//!
//! Each token count has a bucket holding its shapes in creation order (the
//! order in which merge candidates are considered, which keeps mining
//! deterministic) and a trie over the first `depth` tokens for finding exact
//! matches. Shapes with a variable among their leading tokens sit under the
//! trie's wildcard branch, which lookups always follow as well.
//!
//! Every change to a bucket bumps its epoch; the miner's cache entries carry
//! the epoch they were made in and are ignored once it moved on.

use crate::{
    hashing::FastMap,
    template::TTok,
    tokenize::{Kind, Line},
};

#[derive(Default, Debug)]
struct Node {
    children: FastMap<Box<str>, Node>,
    wild: Option<Box<Node>>,
    leaf: Vec<u32>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.leaf.is_empty() && self.children.is_empty() && self.wild.is_none()
    }
}

/// Shapes of one token count.
#[derive(Default, Debug)]
pub(crate) struct Bucket {
    /// Bumped on every insertion and removal.
    pub epoch: u32,
    /// Shape handles in creation order.
    pub shapes: Vec<u32>,
    root: Node,
}

/// All buckets.
#[derive(Debug)]
pub(crate) struct Tree {
    buckets: Vec<Bucket>,
    depth: usize,
}

impl Tree {
    /// An empty tree keyed on `depth` leading tokens.
    pub(crate) fn new(depth: usize) -> Tree {
        Tree {
            buckets: Vec::new(),
            depth,
        }
    }

    /// The bucket for `len` tokens, if any shape ever had that length.
    #[inline]
    pub(crate) fn bucket(&self, len: usize) -> Option<&Bucket> {
        self.buckets.get(len)
    }

    /// Current epoch of the bucket for `len` tokens.
    #[inline]
    pub(crate) fn epoch(&self, len: usize) -> u32 {
        self.buckets.get(len).map_or(0, |b| b.epoch)
    }

    /// Adds shape `handle` (the newest) with tokens `toks`.
    pub(crate) fn insert(&mut self, handle: u32, toks: &[TTok]) {
        let len = toks.len();
        if self.buckets.len() <= len {
            self.buckets.resize_with(len + 1, Bucket::default);
        }
        let depth = self.depth;
        let b = &mut self.buckets[len];
        b.epoch = b.epoch.wrapping_add(1);
        b.shapes.push(handle);
        let mut node = &mut b.root;
        for t in toks.iter().take(depth) {
            node = if matches!(t.kind, Kind::Var | Kind::Glob) {
                node.wild.get_or_insert_with(Box::default)
            } else {
                node.children.entry(t.text().into()).or_default()
            };
        }
        node.leaf.push(handle);
    }

    /// Removes shape `handle` with tokens `toks`.
    pub(crate) fn remove(&mut self, handle: u32, toks: &[TTok]) {
        let depth = self.depth;
        let Some(b) = self.buckets.get_mut(toks.len()) else {
            return;
        };
        b.epoch = b.epoch.wrapping_add(1);
        if let Some(p) = b.shapes.iter().position(|&h| h == handle) {
            b.shapes.remove(p);
        }
        remove_from(&mut b.root, toks, depth, handle);
    }

    /// Shapes that may match `line` exactly (same length, leading tokens equal
    /// or wildcards), appended to `out`.
    pub(crate) fn candidates(&self, line: &Line, out: &mut Vec<u32>) {
        let Some(b) = self.buckets.get(line.toks.len()) else {
            return;
        };
        collect(&b.root, line, 0, self.depth, out);
    }
}

fn remove_from(node: &mut Node, toks: &[TTok], depth: usize, handle: u32) -> bool {
    match toks.first() {
        Some(t) if depth > 0 => {
            let wild = matches!(t.kind, Kind::Var | Kind::Glob);
            let emptied = if wild {
                match node.wild.as_mut() {
                    Some(w) => remove_from(w, &toks[1..], depth - 1, handle),
                    None => false,
                }
            } else {
                match node.children.get_mut(t.text()) {
                    Some(c) => remove_from(c, &toks[1..], depth - 1, handle),
                    None => false,
                }
            };
            if emptied {
                if wild {
                    node.wild = None;
                } else {
                    node.children.remove(t.text());
                }
            }
        }
        _ => {
            if let Some(p) = node.leaf.iter().position(|&h| h == handle) {
                node.leaf.remove(p);
            }
        }
    }
    node.is_empty()
}

fn collect(node: &Node, line: &Line, at: usize, depth: usize, out: &mut Vec<u32>) {
    let Some(t) = line.toks.get(at).filter(|_| at < depth) else {
        out.extend_from_slice(&node.leaf);
        return;
    };
    if t.kind != Kind::Var
        && let Some(c) = node.children.get(line.text_of(t))
    {
        collect(c, line, at + 1, depth, out);
    }
    if t.kind != Kind::Punct
        && let Some(w) = node.wild.as_deref()
    {
        collect(w, line, at + 1, depth, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Limits;

    fn toks(words: &[&str]) -> Vec<TTok> {
        words
            .iter()
            .map(|w| TTok {
                kind: if *w == "<*>" { Kind::Var } else { Kind::Word },
                glue: false,
                text: if *w == "<*>" { "".into() } else { (*w).into() },
            })
            .collect()
    }

    fn line(s: &str) -> Line {
        let mut l = Line::default();
        l.reset(Limits {
            max_tokens: 64,
            max_token_bytes: 64,
        });
        l.push_text(s, false);
        l.finish();
        l
    }

    #[test]
    fn lookups_follow_exact_and_wildcard_branches() {
        let mut t = Tree::new(2);
        t.insert(1, &toks(&["connect", "to", "a"]));
        t.insert(2, &toks(&["<*>", "to", "a"]));
        t.insert(3, &toks(&["connect", "from", "a"]));
        let mut out = Vec::new();
        t.candidates(&line("connect to b"), &mut out);
        out.sort();
        assert_eq!(out, vec![1, 2]);
        let e = t.epoch(3);
        t.remove(1, &toks(&["connect", "to", "a"]));
        assert_ne!(t.epoch(3), e);
        out.clear();
        t.candidates(&line("connect to b"), &mut out);
        assert_eq!(out, vec![2]);
        assert_eq!(t.bucket(3).map(|b| b.shapes.clone()), Some(vec![2, 3]));
        out.clear();
        t.candidates(&line("two words"), &mut out);
        assert!(out.is_empty());
    }
}
