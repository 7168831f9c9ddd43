//! Test blocks shared by pevm's integration tests and its fuzz targets (`publish = false`):
//!
//! - [`asm`]: a tiny EVM assembler;
//! - [`world`]: the state every test block runs on: rich and poor senders, empty and absent
//!   accounts, and hand-assembled contracts that share storage slots, revert, loop, create,
//!   self-destruct, forward calls and read balances;
//! - [`spec`]: blocks described by what each transaction does ([`BlockSpec`]), built into
//!   pevm blocks;
//! - [`strategies`]: proptest strategies of such blocks, weighted towards conflicts;
//! - [`db`]: the world as a client's `CacheDB`, and a database whose reads fail.

pub mod asm;
pub mod db;
pub mod spec;
pub mod strategies;
pub mod world;

pub use db::{cache_db, Down, Unreachable};
pub use spec::{Action, BlockSpec, Gas, Nonce, TxSpec, CHAIN_ID};
pub use strategies::{block_spec, mixed_block, transfer_block_spec};
