//! Which transactions may have read a key: for each bucket of keys (by hash), the highest
//! transaction that read a key in it. A transaction whose incarnation writes a key its previous
//! one did not must send every higher transaction back to validation only if one of them may
//! have read that key before the write landed; on blocks of many workers, where transactions
//! run far ahead of the lowest unfinished one, that wave of validations costs more than the
//! transactions themselves.
//!
//! A mark is made before the read, under no lock; the writer looks at the marks after its
//! write. The key's shard (or record) lock orders them: either the reader's lock came after
//! the writer's, and its read saw the write, or it came before, and the mark happened before
//! the writer looked. A collision only makes the writer send more transactions back.

use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use ahash::RandomState;

use crate::TxIdx;

/// Buckets per transaction of the block: a transaction reads a few dozen keys at most, most
/// of them read by others too.
const BUCKETS_PER_TX: usize = 8;

/// The marks of one block.
#[derive(Debug, Default)]
pub(crate) struct ReadMarks {
    /// Per bucket: the highest reader plus one, 0 when none read a key of it.
    buckets: Vec<AtomicU32>,
    hasher: RandomState,
}

impl ReadMarks {
    /// No mark, with buckets for a block of `block_size` transactions.
    pub(crate) fn new(block_size: usize) -> Self {
        let mut marks = Self::default();
        marks.reset(block_size);
        marks
    }

    /// Forgets every mark, with buckets for a block of `block_size` transactions.
    pub(crate) fn reset(&mut self, block_size: usize) {
        let len = (block_size * BUCKETS_PER_TX)
            .next_power_of_two()
            .clamp(64, 1 << 20);
        self.buckets.truncate(len);
        for bucket in &mut self.buckets {
            *bucket.get_mut() = 0;
        }
        self.buckets.resize_with(len, AtomicU32::default);
    }

    fn bucket<K: Hash>(&self, key: &K) -> &AtomicU32 {
        let hash = self.hasher.hash_one(key) as usize;
        &self.buckets[hash & (self.buckets.len() - 1)]
    }

    /// Marks `key` read by `tx_idx`; call before reading it.
    pub(crate) fn mark<K: Hash>(&self, key: &K, tx_idx: TxIdx) {
        let bucket = self.bucket(key);
        let mark = tx_idx as u32 + 1;
        // A load first: most keys are read by ever higher transactions, or by one.
        if bucket.load(Relaxed) < mark {
            bucket.fetch_max(mark, Relaxed);
        }
    }

    /// Whether a transaction above `tx_idx` may have read `key`; call after writing it.
    pub(crate) fn read_above<K: Hash>(&self, key: &K, tx_idx: TxIdx) -> bool {
        self.bucket(key).load(Relaxed) > tx_idx as u32 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_read_above_a_writer_is_seen() {
        let mut marks = ReadMarks::new(16);
        assert!(!marks.read_above(&1u64, 0));
        marks.mark(&1u64, 3);
        marks.mark(&1u64, 2);
        assert!(marks.read_above(&1u64, 0));
        assert!(marks.read_above(&1u64, 2));
        assert!(!marks.read_above(&1u64, 3), "its own read");
        assert!(!marks.read_above(&1u64, 4));
        marks.reset(16);
        assert!(!marks.read_above(&1u64, 0), "reset forgets");
    }
}
