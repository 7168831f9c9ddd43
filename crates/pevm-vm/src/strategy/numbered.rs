//! Keys numbered in the order first inserted, kept from one block to the next: the accounts a
//! block's transactions name, looked up once per transaction before the block runs.

use std::hash::BuildHasher;

use alloy_primitives::{map::FbBuildHasher, FixedBytes};
use hashbrown::HashTable;

/// Keys numbered from 0 in the order first inserted, each with a value: a hash table of
/// 4-byte numbers into a vector of the entries, which holds the keys.
///
/// Not an `AddressMap`: a block of 50,000 transfers names 100,000 accounts, whose 24-byte
/// buckets (3 MB) would take a cache miss per lookup on top of the one into the entry that
/// every lookup pays anyway, where 4-byte numbers (under 1 MB) mostly stay in the cache. Not
/// an `IndexMap` either, whose 8-byte indices double that table: alternated with one, this
/// was a little faster on each workload measured (BENCHMARKS.md).
#[derive(Debug)]
pub(crate) struct Numbered<const N: usize, V> {
    /// The numbers, hashed by their entries' keys.
    table: HashTable<u32>,
    /// The entries, by number.
    entries: Vec<(FixedBytes<N>, V)>,
    /// The hasher of the keys.
    hasher: FbBuildHasher<N>,
}

impl<const N: usize, V> Default for Numbered<N, V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            entries: Vec::new(),
            hasher: FbBuildHasher::default(),
        }
    }
}

impl<const N: usize, V> Numbered<N, V> {
    /// Empties the map for `additional` keys, keeping its allocations.
    pub(crate) fn clear(&mut self, additional: usize) {
        let Self {
            table,
            entries,
            hasher,
        } = self;
        table.clear();
        entries.clear();
        table.reserve(additional, |&number| {
            hasher.hash_one(entries[number as usize].0)
        });
    }

    /// The number of `key` and its value, inserting `new()` first if it is not there.
    pub(crate) fn entry(&mut self, key: FixedBytes<N>, new: impl FnOnce() -> V) -> (u32, &mut V) {
        let Self {
            table,
            entries,
            hasher,
        } = self;
        let entry = table.entry(
            hasher.hash_one(key),
            |&number| entries[number as usize].0 == key,
            |&number| hasher.hash_one(entries[number as usize].0),
        );
        let number = match entry {
            hashbrown::hash_table::Entry::Occupied(entry) => *entry.get(),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let number = entries.len() as u32;
                entry.insert(number);
                entries.push((key, new()));
                number
            }
        };
        (number, &mut entries[number as usize].1)
    }

    /// The number of `key`, if it is there.
    pub(crate) fn find(&self, key: &FixedBytes<N>) -> Option<u32> {
        let found = |&number: &u32| self.entries[number as usize].0 == *key;
        self.table.find(self.hasher.hash_one(key), found).copied()
    }

    /// The value numbered `number`.
    pub(crate) fn get(&self, number: usize) -> Option<&V> {
        self.entries.get(number).map(|(_, value)| value)
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
