//! The fee half of lazy payments: revm's handler, except that a transaction that never
//! touched the beneficiary leaves its fee owed instead of loading the account.

use std::{cell::Cell, marker::PhantomData};

use alloy_primitives::U256;
use revm::{
    context::result::{EVMError, HaltReason},
    context_interface::Transaction,
    database_interface::DBErrorMarker,
    handler::{post_execution, FrameResult, Handler},
    primitives::hardfork::SpecId,
    Database,
};

use crate::exec::outcome::BlockEvm;

/// revm's mainnet handler, except that a transaction that never touched the beneficiary's
/// account does not load it to pay the fee: the fee is recorded as owed instead, so that fee
/// payments do not make every transaction depend on the one before.
pub(crate) struct LazyBeneficiary<'t, DB> {
    /// The fee owed by the transaction just run, if it did not touch the beneficiary.
    pub(crate) fee: Cell<Option<U256>>,
    _evm: PhantomData<(&'t (), DB)>,
}

impl<DB> Default for LazyBeneficiary<'_, DB> {
    fn default() -> Self {
        Self {
            fee: Cell::new(None),
            _evm: PhantomData,
        }
    }
}

impl<'t, DB> Handler for LazyBeneficiary<'t, DB>
where
    DB: Database,
    DB::Error: DBErrorMarker + std::error::Error,
{
    type Evm = BlockEvm<'t, DB>;
    type Error = EVMError<DB::Error>;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        let ctx = &mut evm.ctx;
        let beneficiary = ctx.block.beneficiary;
        if ctx.journaled_state.inner.state.contains_key(&beneficiary) {
            return post_execution::reward_beneficiary(ctx, exec_result.gas()).map_err(From::from);
        }
        // The same fee revm's reward pays.
        let basefee = ctx.block.basefee as u128;
        let mut price = ctx.tx.effective_gas_price(basefee);
        if ctx.cfg.spec.is_enabled_in(SpecId::LONDON) {
            price = price.saturating_sub(basefee);
        }
        let gas = exec_result.gas();
        let used = gas.used().saturating_sub(gas.reservoir()) as u128;
        self.fee.set(Some(U256::from(price * used)));
        Ok(())
    }
}
