//! The state a block reads: the provider trait (every revm `DatabaseRef + Sync` is one), the
//! in-memory provider, and an overlay of a diff on a provider.

pub(crate) mod overlay;
pub(crate) mod provider;
pub(crate) mod serial_db;
