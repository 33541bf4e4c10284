//! Which offset of a partition may be committed: the lowest offset whose
//! message is not yet durable, or one past the last message handed out
//! when all are.
//!
//! Messages of one partition are stored concurrently and finish in any
//! order; the committed offset only ever moves to a point below which every
//! message is durable (or dead-lettered), so a crash at any moment loses
//! nothing: what follows the committed offset is delivered again.

use std::collections::BTreeSet;

/// The offsets of one assigned partition.
#[derive(Debug, Default, Clone)]
pub(crate) struct PartitionOffsets {
    /// Handed out for storing, not yet finished.
    in_flight: BTreeSet<i64>,
    /// One past the highest offset handed out.
    next: Option<i64>,
    /// The lowest offset given up on (not stored: shutdown): nothing at or
    /// above it may be committed while this assignment lasts.
    barrier: Option<i64>,
    /// The offset last handed to librdkafka to commit.
    stored: Option<i64>,
}

impl PartitionOffsets {
    /// A message at `offset` is handed out for storing.
    pub(crate) fn dispatch(&mut self, offset: i64) {
        self.in_flight.insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |next| next.max(offset + 1)));
    }

    /// The message at `offset` is durable (or dead-lettered).
    pub(crate) fn complete(&mut self, offset: i64) {
        self.in_flight.remove(&offset);
    }

    /// The message at `offset` was given up on without being stored.
    pub(crate) fn abandon(&mut self, offset: i64) {
        self.in_flight.remove(&offset);
        self.barrier = Some(self.barrier.map_or(offset, |b| b.min(offset)));
    }

    /// Messages handed out and not finished.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// One past the highest offset handed out.
    pub(crate) fn next(&self) -> Option<i64> {
        self.next
    }

    /// The offset to commit now, if it is past the one stored last.
    pub(crate) fn committable(&self) -> Option<i64> {
        let mut frontier = self.in_flight.first().copied().or(self.next)?;
        if let Some(barrier) = self.barrier {
            frontier = frontier.min(barrier);
        }
        match self.stored {
            Some(stored) if stored >= frontier => None,
            _ => Some(frontier),
        }
    }

    /// `offset` was handed to librdkafka to commit.
    pub(crate) fn stored(&mut self, offset: i64) {
        self.stored = Some(self.stored.map_or(offset, |c| c.max(offset)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_handed_out_nothing_to_commit() {
        assert_eq!(PartitionOffsets::default().committable(), None);
    }

    #[test]
    fn commits_stop_below_the_oldest_unfinished_message() {
        let mut offsets = PartitionOffsets::default();
        for offset in 10..15 {
            offsets.dispatch(offset);
        }
        assert_eq!(offsets.committable(), Some(10));
        offsets.complete(11);
        offsets.complete(13);
        assert_eq!(offsets.committable(), Some(10));
        offsets.complete(10);
        assert_eq!(offsets.committable(), Some(12));
        offsets.complete(12);
        offsets.complete(14);
        assert_eq!(offsets.committable(), Some(15));
        offsets.stored(15);
        assert_eq!(offsets.committable(), None);
        assert_eq!(offsets.in_flight(), 0);
    }

    #[test]
    fn gaps_in_offsets_are_skipped() {
        // Compacted topics and transaction markers leave gaps.
        let mut offsets = PartitionOffsets::default();
        offsets.dispatch(3);
        offsets.dispatch(7);
        offsets.complete(3);
        assert_eq!(offsets.committable(), Some(7));
        offsets.complete(7);
        assert_eq!(offsets.committable(), Some(8));
    }

    #[test]
    fn an_abandoned_message_is_never_committed_past() {
        let mut offsets = PartitionOffsets::default();
        for offset in 0..4 {
            offsets.dispatch(offset);
        }
        offsets.complete(0);
        offsets.abandon(1);
        offsets.complete(2);
        offsets.complete(3);
        assert_eq!(offsets.committable(), Some(1));
        offsets.stored(1);
        assert_eq!(offsets.committable(), None);
    }

    #[test]
    fn a_stored_offset_does_not_move_back() {
        let mut offsets = PartitionOffsets::default();
        offsets.dispatch(0);
        offsets.complete(0);
        offsets.stored(1);
        offsets.stored(0);
        assert_eq!(offsets.committable(), None);
    }
}
