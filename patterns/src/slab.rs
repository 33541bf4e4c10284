//! A vector of slots with a free list: stable `u32` handles for clusters and
//! templates without per-item allocation.

/// Slots of `T`, reused after removal.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value`, returning its handle.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        match self.free.pop() {
            Some(k) => {
                self.slots[k as usize] = Some(value);
                k
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Removes and returns the value at `k`.
    pub(crate) fn remove(&mut self, k: u32) -> Option<T> {
        let v = self.slots.get_mut(k as usize)?.take()?;
        self.free.push(k);
        self.len -= 1;
        Some(v)
    }

    #[inline]
    pub(crate) fn get(&self, k: u32) -> Option<&T> {
        self.slots.get(k as usize)?.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, k: u32) -> Option<&mut T> {
        self.slots.get_mut(k as usize)?.as_mut()
    }

    /// Number of stored values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stored values with their handles, in handle order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k as u32, v)))
    }
}
