//! The state a block reads and the diff it writes: the provider trait (every revm
//! `DatabaseRef + Sync` is one), the in-memory provider, the state diff, an overlay of a diff
//! on a provider, the serial executor's database (the block's writes over a provider), and the
//! code each worker holds on its own.

pub(crate) mod code;
pub(crate) mod diff;
pub(crate) mod overlay;
pub(crate) mod provider;
pub(crate) mod serial_db;
