//! Recency order of templates, for least-recently-used eviction.
//!
//! An intrusive doubly linked list over slab handles: touching, inserting and
//! removing are O(1) and allocation-free on the hot path.

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    linked: bool,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    linked: false,
};

/// Handles ordered from least to most recently used.
#[derive(Debug)]
pub(crate) struct Lru {
    links: Vec<Link>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            links: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl Lru {
    /// Adds `k` as the most recently used.
    pub(crate) fn push(&mut self, k: u32) {
        let i = k as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, UNLINKED);
        }
        if self.links[i].linked {
            self.remove(k);
        }
        self.links[i] = Link {
            prev: self.tail,
            next: NIL,
            linked: true,
        };
        if self.tail != NIL {
            self.links[self.tail as usize].next = k;
        } else {
            self.head = k;
        }
        self.tail = k;
        self.len += 1;
    }

    /// Removes `k` if present.
    pub(crate) fn remove(&mut self, k: u32) {
        let Some(l) = self.links.get(k as usize).copied() else {
            return;
        };
        if !l.linked {
            return;
        }
        if l.prev != NIL {
            self.links[l.prev as usize].next = l.next;
        } else {
            self.head = l.next;
        }
        if l.next != NIL {
            self.links[l.next as usize].prev = l.prev;
        } else {
            self.tail = l.prev;
        }
        self.links[k as usize] = UNLINKED;
        self.len -= 1;
    }

    /// Marks `k` as the most recently used.
    #[inline]
    pub(crate) fn touch(&mut self, k: u32) {
        if self.tail != k {
            self.push(k);
        }
    }

    /// The least recently used handle.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Handles from least to most recently used.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let k = cur;
            cur = self.links[k as usize].next;
            Some(k)
        })
    }

    /// Number of handles.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_follows_use() {
        let mut l = Lru::default();
        for k in 0..4 {
            l.push(k);
        }
        l.touch(1);
        l.remove(2);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![0, 3, 1]);
        assert_eq!(l.oldest(), Some(0));
        l.remove(0);
        l.remove(0);
        assert_eq!(l.oldest(), Some(3));
        assert_eq!(l.len(), 2);
    }
}
