//! How a block runs: the cost-aware plan, the dependencies known before execution, the
//! transfer strategy, and what a run did.

pub(crate) mod hints;
pub(crate) mod plan;
pub(crate) mod stats;
pub(crate) mod transfers;
