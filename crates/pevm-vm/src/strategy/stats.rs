//! What the engine did for one block, whichever strategy ran it.

use pevm_core::ExecStats;

use crate::Plan;

/// What the engine did for one block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// How the block was run: the workers chosen and the estimate behind the choice.
    pub plan: Plan,
    /// The Block-STM counters; for a block run serially, one execution per transaction.
    pub engine: ExecStats,
    /// Transactions whose fee was owed to the beneficiary instead of written to its account.
    pub lazy_fees: u64,
    /// Transactions whose value was credited to the recipient as a delta.
    pub lazy_credits: u64,
    /// Accounts read only to pay them the fees and credits owed (no transaction wrote them
    /// before).
    pub lazy_accounts: u64,
}
