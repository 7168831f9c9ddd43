//! Multi-version memory: for every key, the values written by each transaction of the block.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use ahash::RandomState;
use dashmap::DashMap;
use smallvec::SmallVec;

use crate::{lock, Incarnation, Pool, TxIdx, Version};

/// The fewest transactions of the last block for which [`MvMemory::reset`] clears its map on
/// the workers.
const PARALLEL_RESET_MIN: usize = 4096;

/// What a read through the multi-version memory saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOrigin {
    /// No earlier transaction wrote the key: the value came from the base state.
    Base,
    /// The value written by this version of an earlier transaction.
    Tx(Version),
}

/// Result of [`MvMemory::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvRead<V> {
    /// Latest write by a transaction with a lower index than the reader (value cloned).
    Value(Version, V),
    /// No lower transaction wrote the key: read the base state.
    Base,
    /// The latest write below is an ESTIMATE of this transaction: the reader must abort
    /// and wait for it to re-execute.
    Estimate(TxIdx),
}

/// Reads of one incarnation, in the order made (duplicates allowed; validation checks each).
pub type ReadSet<K> = Vec<(K, ReadOrigin)>;

/// Writes of one incarnation.
pub type WriteSet<K, V> = Vec<(K, V)>;

/// A key of the multi-version memory.
pub trait MvKey: Eq + Hash + Clone + Send + Sync {
    /// The one transaction expected to write this key, when the key itself says so (a
    /// payment that transaction owes, an account no other transaction is expected to write).
    /// Its versions live with that transaction rather than in the shared map: writing and
    /// reading them takes no shard of the map, and the map holds only keys that several
    /// transactions may write. A write by another transaction still goes to the map, and marks
    /// the owner so that reads of its keys look there too: an owner is a placement, never
    /// trusted for correctness.
    fn owner(&self) -> Option<TxIdx> {
        None
    }
}

impl MvKey for u64 {}

/// A write recorded for one key by one transaction.
enum Entry<V> {
    /// Value written by the given incarnation.
    Data { incarnation: Incarnation, value: V },
    /// The writer was aborted: its next incarnation will likely write here again.
    Estimate,
}

/// The writes to one key, sorted by transaction index. Most keys have one writer, stored
/// inline: no allocation per key.
struct Versions<V>(SmallVec<[(TxIdx, Entry<V>); 1]>);

impl<V> Default for Versions<V> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<V> Versions<V> {
    /// Sets the entry of `tx_idx`.
    fn insert(&mut self, tx_idx: TxIdx, entry: Entry<V>) {
        match self.0.binary_search_by_key(&tx_idx, |(writer, _)| *writer) {
            Ok(i) => self.0[i].1 = entry,
            Err(i) => self.0.insert(i, (tx_idx, entry)),
        }
    }

    /// Removes the entry of `tx_idx`, if any.
    fn remove(&mut self, tx_idx: TxIdx) {
        if let Ok(i) = self.0.binary_search_by_key(&tx_idx, |(writer, _)| *writer) {
            self.0.remove(i);
        }
    }

    /// The entry of the highest transaction below `tx_idx`.
    fn latest_below(&self, tx_idx: TxIdx) -> Option<&(TxIdx, Entry<V>)> {
        let end = self.0.partition_point(|(writer, _)| *writer < tx_idx);
        end.checked_sub(1).map(|i| &self.0[i])
    }
}

/// Up to this many keys, set differences scan linearly instead of hashing.
const LINEAR_SCAN_MAX: usize = 8;

/// Multi-version memory of one block.
///
/// Reads and writes lock only the shard of the concurrent map that holds the key; what each
/// transaction last read and wrote lives in its own per-transaction record, behind one lock.
pub struct MvMemory<K, V> {
    /// Key -> writing transaction -> entry, ordered by transaction index.
    data: DashMap<K, Versions<V>, RandomState>,
    /// Per transaction: what its last recorded incarnation read and wrote; at least one per
    /// transaction of the block (those beyond it are left from larger blocks).
    records: Vec<Mutex<TxRecord<K, V>>>,
    /// The number of the current block, which its records carry: a record of an earlier
    /// block is emptied when first locked in this one (see [`Self::record_of`]).
    block: u64,
    /// Per transaction: whether another transaction wrote a key it owns (see
    /// [`MvKey::owner`]), which then lives in the shared map. Set after that write is in
    /// the map, and never cleared within a block.
    foreign: Vec<AtomicBool>,
}

/// What one transaction's last recorded incarnation read and wrote: one lock for all of it,
/// taken once per record, validation or abort.
struct TxRecord<K, V> {
    /// The block it belongs to (see [`MvMemory::block`]).
    block: u64,
    /// Its read set.
    reads: ReadSet<K>,
    /// The keys of the shared map it wrote.
    writes: Vec<K>,
    /// The keys only it can write (see [`MvKey::owner`]) that it wrote, with their values.
    owned: Vec<(K, Entry<V>)>,
}

impl<K, V> Default for TxRecord<K, V> {
    fn default() -> Self {
        Self {
            block: 0,
            reads: Vec::new(),
            writes: Vec::new(),
            owned: Vec::new(),
        }
    }
}

impl<K, V> TxRecord<K, V> {
    /// Forgets everything, keeping the allocations.
    fn clear(&mut self) {
        self.reads.clear();
        self.writes.clear();
        self.owned.clear();
    }
}

impl<K, V> MvMemory<K, V>
where
    K: MvKey,
    V: Clone + Send + Sync,
{
    /// Creates an empty memory for a block of `block_size` transactions.
    pub fn new(block_size: usize) -> Self {
        Self {
            data: DashMap::with_hasher(RandomState::new()),
            records: (0..block_size).map(|_| Mutex::default()).collect(),
            block: 0,
            foreign: (0..block_size).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Empties the memory for a block of `block_size` transactions, keeping its allocations.
    /// The last block's map is dropped on the workers of `pool` (a cache miss or two per key:
    /// milliseconds for a large block); its records are emptied by the workers of the new
    /// block, each when first locked, rather than all here before the block starts (40 to 60
    /// µs of a mainnet block of 1,300 transactions).
    pub fn reset(&mut self, block_size: usize, pool: &Pool) {
        // The map of a small block clears faster on this thread than the workers start.
        let this_thread = Pool::new(1);
        let pool = if self.foreign.len() < PARALLEL_RESET_MIN {
            &this_thread
        } else {
            pool
        };
        // Each shard's table cleared whole (its control bytes reset, its buckets kept):
        // `DashMap::clear` erases entry by entry, leaving tombstones that the next block's
        // inserts then have to rehash away.
        pool.for_each_mut(self.data.shards_mut(), |_, shard| shard.get_mut().clear());
        self.block += 1;
        if self.records.len() < block_size {
            self.records.resize_with(block_size, Mutex::default);
        }
        self.foreign.clear();
        self.foreign
            .resize_with(block_size, || AtomicBool::new(false));
    }

    /// The record of `tx_idx`, locked; one left from an earlier block is emptied first.
    fn record_of(&self, tx_idx: TxIdx) -> MutexGuard<'_, TxRecord<K, V>> {
        let mut record = lock(&self.records[tx_idx]);
        if record.block != self.block {
            record.clear();
            record.block = self.block;
        }
        record
    }

    /// Reads `key` as transaction `tx_idx` sees it: the latest write of a lower transaction.
    pub fn read(&self, key: &K, tx_idx: TxIdx) -> MvRead<V> {
        self.latest_below(key, tx_idx, |writer, entry| match entry {
            Entry::Data { incarnation, value } => MvRead::Value(
                Version {
                    tx_idx: writer,
                    incarnation: *incarnation,
                },
                value.clone(),
            ),
            Entry::Estimate => MvRead::Estimate(writer),
        })
        .unwrap_or(MvRead::Base)
    }

    /// Records an incarnation's reads and writes; removes keys the previous incarnation
    /// wrote and this one did not. A key written twice keeps its last value.
    ///
    /// Returns true when it wrote a key the previous incarnation did not write.
    pub fn record(&self, version: Version, reads: ReadSet<K>, mut writes: WriteSet<K, V>) -> bool {
        let Version {
            tx_idx,
            incarnation,
        } = version;
        // Lock order: a transaction's record, then the map's shards (never the reverse).
        let mut record = self.record_of(tx_idx);
        let record = &mut *record;
        record.reads = reads;
        let wrote_new_owned = record_owned(&mut record.owned, version, &mut writes);
        if record.writes.is_empty() {
            // Nothing recorded before (a first incarnation, the common case): every key is
            // new, and the record's allocation, kept from earlier blocks, takes them.
            let wrote_new_location = wrote_new_owned || !writes.is_empty();
            record
                .writes
                .extend(writes.iter().map(|(key, _)| key.clone()));
            self.insert_all(tx_idx, incarnation, writes);
            self.mark_foreign(&record.writes);
            return wrote_new_location;
        }
        let new_keys: Vec<K> = writes.iter().map(|(key, _)| key.clone()).collect();
        self.insert_all(tx_idx, incarnation, writes);
        self.mark_foreign(&new_keys);
        for stale in difference(&record.writes, &new_keys) {
            if let Some(mut versions) = self.data.get_mut(stale) {
                versions.remove(tx_idx);
            }
        }
        let wrote_new_location =
            wrote_new_owned || difference(&new_keys, &record.writes).next().is_some();
        record.writes = new_keys;
        wrote_new_location
    }

    /// Marks the owners of `keys`, written to the shared map, as written by another
    /// transaction (after the writes: a reader that sees the mark finds them).
    fn mark_foreign(&self, keys: &[K]) {
        for owner in keys.iter().filter_map(MvKey::owner) {
            if let Some(foreign) = self.foreign.get(owner) {
                foreign.store(true, Ordering::Release);
            }
        }
    }

    /// Stores `writes` as incarnation `incarnation` of `tx_idx`.
    fn insert_all(&self, tx_idx: TxIdx, incarnation: Incarnation, writes: WriteSet<K, V>) {
        for (key, value) in writes {
            self.data
                .entry(key)
                .or_default()
                .insert(tx_idx, Entry::Data { incarnation, value });
        }
    }

    /// Marks every write of `tx_idx`'s last incarnation as ESTIMATE.
    pub fn convert_writes_to_estimates(&self, tx_idx: TxIdx) {
        let mut record = self.record_of(tx_idx);
        for key in &record.writes {
            if let Some(mut versions) = self.data.get_mut(key) {
                versions.insert(tx_idx, Entry::Estimate);
            }
        }
        for (_, entry) in &mut record.owned {
            *entry = Entry::Estimate;
        }
    }

    /// Re-reads every key of `tx_idx`'s last read set and returns whether each read still
    /// sees the same origin (an ESTIMATE never matches).
    pub fn validate_read_set(&self, tx_idx: TxIdx) -> bool {
        // Reading a key owned by a lower transaction locks that one's record: records are
        // locked from higher transactions to lower ones only.
        self.record_of(tx_idx)
            .reads
            .iter()
            .all(|(key, origin)| self.origin(key, tx_idx) == Some(*origin))
    }

    /// Keys written by `tx_idx`'s last incarnation (for critical-path analysis and final
    /// state collection).
    pub fn written_keys(&self, tx_idx: TxIdx) -> Vec<K> {
        let record = self.record_of(tx_idx);
        let mut keys = record.writes.clone();
        keys.extend(record.owned.iter().map(|(key, _)| key.clone()));
        keys
    }

    /// The transactions whose writes `tx_idx`'s last incarnation read: its dependencies, in
    /// index order.
    pub fn dependencies(&self, tx_idx: TxIdx) -> Vec<TxIdx> {
        let mut writers: Vec<TxIdx> = self
            .record_of(tx_idx)
            .reads
            .iter()
            .filter_map(|(_, origin)| match origin {
                ReadOrigin::Tx(version) => Some(version.tx_idx),
                ReadOrigin::Base => None,
            })
            .collect();
        writers.sort_unstable();
        writers.dedup();
        writers
    }

    /// Final value of `key` after the whole block (latest write of any transaction); None
    /// if no transaction wrote it, or (only possible mid-block) the latest write is an ESTIMATE.
    pub fn final_value(&self, key: &K) -> Option<V> {
        self.latest_below(key, TxIdx::MAX, |_, entry| match entry {
            Entry::Data { value, .. } => Some(value.clone()),
            Entry::Estimate => None,
        })
        .flatten()
    }

    /// Origin a read of `key` by `tx_idx` would have now; None when it hits an ESTIMATE.
    fn origin(&self, key: &K, tx_idx: TxIdx) -> Option<ReadOrigin> {
        self.latest_below(key, tx_idx, |writer, entry| match entry {
            Entry::Data { incarnation, .. } => Some(ReadOrigin::Tx(Version {
                tx_idx: writer,
                incarnation: *incarnation,
            })),
            Entry::Estimate => None,
        })
        .unwrap_or(Some(ReadOrigin::Base))
    }

    /// Applies `f` to the latest entry of `key` written by a transaction below `tx_idx`.
    fn latest_below<R>(
        &self,
        key: &K,
        tx_idx: TxIdx,
        f: impl FnOnce(TxIdx, &Entry<V>) -> R,
    ) -> Option<R> {
        let Some(owner) = key.owner() else {
            let versions = self.data.get(key)?;
            let (writer, entry) = versions.latest_below(tx_idx)?;
            return Some(f(*writer, entry));
        };
        // The mark first: a write to the map that it does not show yet is one this read
        // may miss, as if made after it (its transaction's validation comes after).
        let foreign = self
            .foreign
            .get(owner)
            .is_some_and(|foreign| foreign.load(Ordering::Acquire));
        let in_block = owner < tx_idx && owner < self.foreign.len();
        let record = in_block.then(|| self.record_of(owner));
        let own = record
            .as_ref()
            .and_then(|record| record.owned.iter().find(|(written, _)| written == key))
            .map(|(_, entry)| entry);
        if foreign {
            // Lock order: a record, then the map's shards, as in `record`.
            if let Some(versions) = self.data.get(key) {
                if let Some((writer, entry)) = versions.latest_below(tx_idx) {
                    if own.is_none() || *writer > owner {
                        return Some(f(*writer, entry));
                    }
                }
            }
        }
        own.map(|entry| f(owner, entry))
    }
}

/// Takes the keys `version`'s transaction owns (see [`MvKey::owner`]) out of `writes` and
/// makes them its `owned` writes, replacing its previous incarnation's; returns whether one
/// of them was not written by the previous incarnation. The keys other transactions own stay
/// in `writes`, for the shared map.
fn record_owned<K: MvKey, V>(
    owned: &mut Vec<(K, Entry<V>)>,
    version: Version,
    writes: &mut WriteSet<K, V>,
) -> bool {
    let mine = |key: &K| key.owner() == Some(version.tx_idx);
    if owned.is_empty() && !writes.iter().any(|(key, _)| mine(key)) {
        return false;
    }
    // Inline: a transaction owns a few keys, and this runs once per incarnation.
    let previous: SmallVec<[K; 4]> = owned.drain(..).map(|(key, _)| key).collect();
    let mut wrote_new = false;
    for (key, value) in writes.extract_if(.., |(key, _)| mine(key)) {
        wrote_new |= !previous.contains(&key);
        let entry = Entry::Data {
            incarnation: version.incarnation,
            value,
        };
        match owned.iter_mut().find(|(written, _)| *written == key) {
            Some(slot) => slot.1 = entry,
            None => owned.push((key, entry)),
        }
    }
    wrote_new
}

impl<K, V> fmt::Debug for MvMemory<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MvMemory")
            .field("block_size", &self.foreign.len())
            .finish_non_exhaustive()
    }
}

/// The keys of `a` that are not in `b`.
fn difference<'a, K: Eq + Hash>(a: &'a [K], b: &'a [K]) -> impl Iterator<Item = &'a K> {
    let set: Option<HashSet<&K, RandomState>> =
        (b.len() > LINEAR_SCAN_MAX).then(|| b.iter().collect());
    a.iter().filter(move |key| match &set {
        Some(set) => !set.contains(key),
        None => !b.contains(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_latest_write_below_reader() {
        let mv = MvMemory::<u64, u64>::new(4);
        assert_eq!(mv.read(&1, 3), MvRead::Base);
        mv.record(Version::new(0, 0), vec![], vec![(1, 10)]);
        mv.record(Version::new(2, 0), vec![], vec![(1, 12)]);
        assert_eq!(mv.read(&1, 0), MvRead::Base);
        assert_eq!(mv.read(&1, 1), MvRead::Value(Version::new(0, 0), 10));
        assert_eq!(mv.read(&1, 2), MvRead::Value(Version::new(0, 0), 10));
        assert_eq!(mv.read(&1, 3), MvRead::Value(Version::new(2, 0), 12));
        assert_eq!(mv.read(&2, 3), MvRead::Base);
        assert_eq!(mv.final_value(&1), Some(12));
        assert_eq!(mv.final_value(&2), None);
    }

    #[test]
    fn estimates_block_readers_above() {
        let mv = MvMemory::<u64, u64>::new(3);
        mv.record(Version::new(1, 0), vec![], vec![(5, 1), (6, 2)]);
        mv.convert_writes_to_estimates(1);
        assert_eq!(mv.read(&5, 2), MvRead::Estimate(1));
        assert_eq!(mv.read(&6, 2), MvRead::Estimate(1));
        assert_eq!(mv.read(&5, 1), MvRead::Base);
        assert!(!mv.record(Version::new(1, 1), vec![], vec![(5, 3), (6, 4)]));
        assert_eq!(mv.read(&5, 2), MvRead::Value(Version::new(1, 1), 3));
    }

    #[test]
    fn record_removes_stale_keys_and_reports_new_locations() {
        let mv = MvMemory::<u64, u64>::new(2);
        assert!(mv.record(Version::new(0, 0), vec![], vec![(1, 1), (2, 2)]));
        // Subset of the previous writes: nothing new.
        assert!(!mv.record(Version::new(0, 1), vec![], vec![(2, 3)]));
        assert_eq!(mv.read(&1, 1), MvRead::Base);
        assert_eq!(mv.read(&2, 1), MvRead::Value(Version::new(0, 1), 3));
        assert_eq!(mv.written_keys(0), vec![2]);
        // A key not written before: new location; the stale one goes away.
        assert!(mv.record(Version::new(0, 2), vec![], vec![(7, 4)]));
        assert_eq!(mv.read(&2, 1), MvRead::Base);
        assert_eq!(mv.written_keys(0), vec![7]);
        // Empty write set after a non-empty one.
        assert!(!mv.record(Version::new(0, 3), vec![], vec![]));
        assert_eq!(mv.read(&7, 1), MvRead::Base);
    }

    #[test]
    fn record_handles_large_write_sets() {
        let mv = MvMemory::<u64, u64>::new(1);
        let writes = |range: std::ops::Range<u64>| range.map(|k| (k, k)).collect();
        assert!(mv.record(Version::new(0, 0), vec![], writes(0..20)));
        assert!(!mv.record(Version::new(0, 1), vec![], writes(5..20)));
        assert!(mv.record(Version::new(0, 2), vec![], writes(5..21)));
        assert_eq!(mv.final_value(&4), None);
        assert_eq!(mv.final_value(&20), Some(20));
    }

    #[test]
    fn validation_fails_after_lower_rewrite_or_estimate() {
        let mv = MvMemory::<u64, u64>::new(3);
        mv.record(Version::new(0, 0), vec![], vec![(1, 10)]);
        let MvRead::Value(seen, _) = mv.read(&1, 2) else {
            panic!("expected a value");
        };
        mv.record(
            Version::new(2, 0),
            vec![(1, ReadOrigin::Tx(seen)), (9, ReadOrigin::Base)],
            vec![],
        );
        assert!(mv.validate_read_set(2));

        // A lower transaction rewrites the key read.
        mv.record(Version::new(0, 1), vec![], vec![(1, 11)]);
        assert!(!mv.validate_read_set(2));

        // Read the new value, then the writer becomes an estimate.
        mv.record(
            Version::new(2, 1),
            vec![(1, ReadOrigin::Tx(Version::new(0, 1)))],
            vec![],
        );
        assert!(mv.validate_read_set(2));
        mv.convert_writes_to_estimates(0);
        assert!(!mv.validate_read_set(2));

        // A key read from the base state gets written below.
        mv.record(Version::new(2, 2), vec![(9, ReadOrigin::Base)], vec![]);
        assert!(mv.validate_read_set(2));
        mv.record(Version::new(1, 0), vec![], vec![(9, 0)]);
        assert!(!mv.validate_read_set(2));
    }

    /// A key whose owner is its number divided by 100 (none below 100).
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Owned(u64);

    impl MvKey for Owned {
        fn owner(&self) -> Option<TxIdx> {
            (self.0 >= 100).then_some(self.0 as TxIdx / 100)
        }
    }

    #[test]
    fn owned_keys_live_with_their_writer() {
        let mv = MvMemory::<Owned, u64>::new(4);
        // Transaction 1 writes its own key 100 and the shared key 7.
        assert!(mv.record(
            Version::new(1, 0),
            vec![],
            vec![(Owned(100), 1), (Owned(7), 2)]
        ));
        assert!(mv.data.get(&Owned(100)).is_none(), "not in the shared map");
        assert_eq!(mv.read(&Owned(100), 1), MvRead::Base);
        assert_eq!(
            mv.read(&Owned(100), 3),
            MvRead::Value(Version::new(1, 0), 1)
        );
        assert_eq!(mv.final_value(&Owned(100)), Some(1));
        let mut keys = mv.written_keys(1);
        keys.sort_by_key(|key| key.0);
        assert_eq!(keys, [Owned(7), Owned(100)]);
        mv.record(
            Version::new(3, 0),
            vec![(Owned(100), ReadOrigin::Tx(Version::new(1, 0)))],
            vec![],
        );
        assert!(mv.validate_read_set(3));
        // An ESTIMATE blocks the reader and fails its validation.
        mv.convert_writes_to_estimates(1);
        assert_eq!(mv.read(&Owned(100), 3), MvRead::Estimate(1));
        assert!(!mv.validate_read_set(3));
        // The next incarnation writes the same owned key (nothing new), then a new one.
        assert!(!mv.record(
            Version::new(1, 1),
            vec![],
            vec![(Owned(100), 5), (Owned(7), 2)]
        ));
        assert_eq!(
            mv.read(&Owned(100), 2),
            MvRead::Value(Version::new(1, 1), 5)
        );
        assert!(!mv.validate_read_set(3));
        assert!(mv.record(Version::new(1, 2), vec![], vec![(Owned(101), 6)]));
        assert_eq!(
            mv.read(&Owned(100), 2),
            MvRead::Base,
            "stale owned key removed"
        );
        assert_eq!(
            mv.read(&Owned(7), 2),
            MvRead::Base,
            "stale shared key removed"
        );
        assert_eq!(
            mv.read(&Owned(101), 2),
            MvRead::Value(Version::new(1, 2), 6)
        );
    }

    #[test]
    fn reset_forgets_the_last_blocks_records_and_writes() {
        let mut mv = MvMemory::<Owned, u64>::new(4);
        let pool = Pool::new(1);
        for tx_idx in 0..4 {
            let owned = Owned(100 * tx_idx as u64 + 1);
            let read = vec![(Owned(7), ReadOrigin::Base)];
            mv.record(
                Version::new(tx_idx, 0),
                read,
                vec![(owned, 1), (Owned(7), 2)],
            );
        }
        // A smaller block, then a larger one: records kept from the first block are empty in
        // each.
        for block_size in [2, 6] {
            mv.reset(block_size, &pool);
            for tx_idx in 0..block_size {
                assert!(mv.written_keys(tx_idx).is_empty());
                assert!(mv.dependencies(tx_idx).is_empty());
                assert!(mv.validate_read_set(tx_idx), "nothing read yet");
                assert_eq!(mv.read(&Owned(7), tx_idx), MvRead::Base);
            }
            assert_eq!(mv.read(&Owned(101), block_size - 1), MvRead::Base);
            assert_eq!(mv.final_value(&Owned(101)), None);
            assert_eq!(mv.final_value(&Owned(7)), None);
        }
        // Transaction 1 records again: only its new writes are there, and they are new.
        assert!(mv.record(Version::new(1, 0), vec![], vec![(Owned(102), 3)]));
        assert_eq!(mv.written_keys(1), [Owned(102)]);
        assert_eq!(mv.read(&Owned(101), 3), MvRead::Base);
        assert_eq!(
            mv.read(&Owned(102), 3),
            MvRead::Value(Version::new(1, 0), 3)
        );
    }

    #[test]
    fn another_transactions_write_of_an_owned_key_is_seen() {
        let mv = MvMemory::<Owned, u64>::new(4);
        let key = Owned(100);
        mv.record(Version::new(1, 0), vec![], vec![(key.clone(), 1)]);
        let read_of_owner = vec![(key.clone(), ReadOrigin::Tx(Version::new(1, 0)))];
        mv.record(Version::new(3, 0), read_of_owner, vec![]);
        assert!(mv.validate_read_set(3));
        // Transaction 2 writes the key transaction 1 owns: readers above it see its write.
        assert!(mv.record(Version::new(2, 0), vec![], vec![(key.clone(), 2)]));
        assert!(mv.data.get(&key).is_some(), "in the shared map");
        assert_eq!(mv.read(&key, 3), MvRead::Value(Version::new(2, 0), 2));
        assert_eq!(mv.read(&key, 2), MvRead::Value(Version::new(1, 0), 1));
        assert!(!mv.validate_read_set(3));
        // A write below the owner: the owner reads it, and its own write hides it above.
        mv.record(Version::new(0, 0), vec![], vec![(key.clone(), 7)]);
        assert_eq!(mv.read(&key, 1), MvRead::Value(Version::new(0, 0), 7));
        assert_eq!(mv.read(&key, 2), MvRead::Value(Version::new(1, 0), 1));
        assert_eq!(mv.final_value(&key), Some(2));
        // The other writer's ESTIMATE blocks the readers above it.
        mv.convert_writes_to_estimates(2);
        assert_eq!(mv.read(&key, 3), MvRead::Estimate(2));
        assert_eq!(mv.final_value(&key), None);
        // Its next incarnation does not write the key: the owner's write again.
        assert!(!mv.record(Version::new(2, 1), vec![], vec![]));
        assert_eq!(mv.read(&key, 3), MvRead::Value(Version::new(1, 0), 1));
        assert_eq!(mv.final_value(&key), Some(1));
        let mut keys = mv.written_keys(0);
        keys.extend(mv.written_keys(1));
        assert_eq!(keys, [key.clone(), key]);
    }

    /// Workers recording, reading and validating transactions that read each other's owned
    /// keys and shared keys, and write the next one's owned key, at once: validation locks a
    /// lower transaction's record while holding its own, recording locks the map's shards
    /// while holding its own; neither order may deadlock, and every read set recorded last
    /// validates once all is recorded.
    #[test]
    fn concurrent_records_reads_and_validations() {
        const TXS: usize = 32;
        let mv = MvMemory::<Owned, u64>::new(TXS);
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let mv = &mv;
                scope.spawn(move || {
                    for round in 0..200u32 {
                        for tx in (worker..TXS).step_by(4) {
                            // Read the owned key of each lower transaction and one shared key.
                            let mut reads = Vec::new();
                            for key in (1..tx).map(|t| Owned(t as u64 * 100)).chain([Owned(7)]) {
                                let origin = match mv.read(&key, tx) {
                                    MvRead::Value(version, _) => ReadOrigin::Tx(version),
                                    MvRead::Base | MvRead::Estimate(_) => ReadOrigin::Base,
                                };
                                reads.push((key, origin));
                            }
                            let mut writes = vec![(Owned(7), u64::from(round))];
                            if tx > 0 {
                                writes.push((Owned(tx as u64 * 100), u64::from(round)));
                            }
                            if tx + 1 < TXS && round % 2 == 0 {
                                // A write of the next transaction's owned key.
                                writes.push((Owned(tx as u64 * 100 + 100), u64::from(round)));
                            }
                            mv.record(Version::new(tx, round), reads, writes);
                            if !mv.validate_read_set(tx) && round % 3 == 0 {
                                mv.convert_writes_to_estimates(tx);
                            }
                        }
                    }
                });
            }
        });
        // Each transaction again in order, reading what the ones below left: all valid.
        for tx in 0..TXS {
            let reads = (1..tx)
                .map(|t| Owned(t as u64 * 100))
                .chain([Owned(7)])
                .map(|key| match mv.read(&key, tx) {
                    MvRead::Value(version, _) => (key, ReadOrigin::Tx(version)),
                    _ => (key, ReadOrigin::Base),
                })
                .collect();
            let mut writes = vec![(Owned(7), 1000)];
            if tx > 0 {
                writes.push((Owned(tx as u64 * 100), 1000));
            }
            mv.record(Version::new(tx, 1000), reads, writes);
        }
        assert!((0..TXS).all(|tx| mv.validate_read_set(tx)));
    }
}
