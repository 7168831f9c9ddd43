//! Seeded synthetic blocks of about one gigagas each, selected by name
//! (`pevm-bench bench --gigagas KIND`).

use std::path::Path;

use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use pevm_vm::{
    revm::{
        bytecode::Bytecode,
        context::{BlockEnv, TxEnv},
    },
    Block, ChainSpec, Hardfork, InMemoryAccount, InMemoryProvider,
};

use crate::{
    synthetic::{account, Rng, Workload},
    uniswap::{address_word, swap_calldata, Contracts, SWAP_GAS},
};

/// One gigagas.
pub const GIGAGAS: u64 = 1_000_000_000;

/// Gas price of every transaction (about 3 gwei).
const GAS_PRICE: u128 = 0xb2d0_5e07;

/// Gas of a plain ETH transfer.
const TRANSFER_GAS: u64 = 21_000;

/// Gas an ERC-20 transfer between two holders uses (Osaka rules).
const ERC20_TRANSFER_GAS: u64 = 34_300;

/// Gas a swap uses, about (Osaka rules).
const UNISWAP_SWAP_GAS: u64 = 150_000;

/// Swaps each Uniswap trader makes.
const SWAPS_PER_TRADER: u64 = 8;

/// The workload names `--gigagas` accepts.
pub const KINDS: [&str; 8] = [
    "raw",
    "raw-same-recipient",
    "erc20",
    "hot10",
    "hot30",
    "hot100",
    "chain",
    "uniswap",
];

/// The workload called `kind`, built with `seed`; `contracts` is the folder of compiled
/// contract bytecode (`../shared/contracts`) that the contract workloads need.
pub fn workload(kind: &str, contracts: &Path, seed: u64) -> Result<Workload, String> {
    let mut rng = Rng::new(seed);
    let mut builder = Builder::default();
    match kind {
        "raw" => raw(&mut builder, None),
        "raw-same-recipient" => raw(&mut builder, Some(&mut rng)),
        "chain" => chain(&mut builder),
        "erc20" => erc20(&mut builder, contracts, &mut rng)?,
        "hot10" => hot(&mut builder, contracts, 10, &mut rng)?,
        "hot30" => hot(&mut builder, contracts, 30, &mut rng)?,
        "hot100" => hot(&mut builder, contracts, 100, &mut rng)?,
        "uniswap" => uniswap(&mut builder, contracts)?,
        other => {
            return Err(format!(
                "unknown workload {other:?} (known: {})",
                KINDS.join(", ")
            ))
        }
    }
    Ok(builder.finish(kind))
}

/// A gigagas of plain transfers of 1 wei between distinct accounts, or (with `rng`) of random
/// values to one recipient.
fn raw(builder: &mut Builder, rng: Option<&mut Rng>) {
    match rng {
        None => {
            for i in 0..GIGAGAS / TRANSFER_GAS {
                builder.transfer(account(i), account(1 << 32 | i), 1);
            }
        }
        Some(rng) => {
            for i in 0..GIGAGAS / TRANSFER_GAS {
                builder.transfer(account(i), account(1 << 32), 1 + rng.below(1000));
            }
        }
    }
}

/// A gigagas of transfers in which each transaction spends what the previous one sent.
fn chain(builder: &mut Builder) {
    builder.fund(account(0));
    let mut value = U256::from(4_000u128 * 10u128.pow(18));
    for i in 0..GIGAGAS / TRANSFER_GAS {
        value -= U256::from(TRANSFER_GAS * GAS_PRICE as u64);
        builder.send(
            account(i),
            TxKind::Call(account(i + 1)),
            value,
            TRANSFER_GAS,
            Bytes::new(),
        );
    }
}

/// A gigagas of ERC-20 transfers between distinct holders.
fn erc20(builder: &mut Builder, contracts: &Path, rng: &mut Rng) -> Result<(), String> {
    let token = builder.erc20(contracts)?;
    for i in 0..GIGAGAS / ERC20_TRANSFER_GAS {
        let (from, to) = (account(i), account(1 << 32 | i));
        builder.token_holder(token, to);
        builder.token_transfer(token, from, to, 1 + rng.below(1000));
    }
    Ok(())
}

/// A gigagas of ERC-20 transfers, `percent` of them to one of 4 hot holders; the rest to
/// distinct holders, or plain transfers.
fn hot(builder: &mut Builder, contracts: &Path, percent: u64, rng: &mut Rng) -> Result<(), String> {
    let token = builder.erc20(contracts)?;
    let hot: Vec<Address> = (0..4).map(|h| account(2 << 32 | h)).collect();
    for &h in &hot {
        builder.token_holder(token, h);
    }
    let mut gas = 0;
    let mut i = 0;
    while gas < GIGAGAS {
        let from = account(i);
        if rng.below(100) < percent {
            let to = hot[rng.below(hot.len() as u64) as usize];
            builder.token_transfer(token, from, to, 1 + rng.below(1000));
            gas += ERC20_TRANSFER_GAS;
        } else if rng.below(2) == 0 {
            let to = account(1 << 32 | i);
            builder.token_holder(token, to);
            builder.token_transfer(token, from, to, 1 + rng.below(1000));
            gas += ERC20_TRANSFER_GAS;
        } else {
            builder.transfer(from, account(1 << 32 | i), 1);
            gas += TRANSFER_GAS;
        }
        i += 1;
    }
    Ok(())
}

/// A gigagas of Uniswap swaps by independent clusters of 8 traders each: swaps within a
/// cluster share its pool. Consecutive transactions go to different clusters, as in a real
/// block.
fn uniswap(builder: &mut Builder, contracts: &Path) -> Result<(), String> {
    let contracts = Contracts::load(contracts)?;
    let traders_per_cluster = 8;
    let clusters = GIGAGAS / UNISWAP_SWAP_GAS / (traders_per_cluster * SWAPS_PER_TRADER);
    let mut singles = Vec::new();
    for c in 0..clusters {
        let traders: Vec<Address> = (0..traders_per_cluster)
            .map(|t| account(c << 16 | t))
            .collect();
        let cluster = contracts.cluster(c, &traders);
        builder.accounts.extend(cluster.accounts);
        traders.iter().for_each(|&t| builder.fund(t));
        singles.push((cluster.single_swap, traders));
    }
    for round in 0..SWAPS_PER_TRADER {
        for t in 0..traders_per_cluster as usize {
            for (single_swap, traders) in &singles {
                let to = TxKind::Call(*single_swap);
                builder.send(traders[t], to, U256::ZERO, SWAP_GAS, swap_calldata(round));
            }
        }
    }
    Ok(())
}

/// Accumulates accounts and transactions.
#[derive(Default)]
struct Builder {
    provider: InMemoryProvider,
    accounts: std::collections::HashMap<Address, InMemoryAccount>,
    nonces: std::collections::HashMap<Address, u64>,
    txs: Vec<TxEnv>,
}

/// Balance of every funded account: 4,567 ETH.
fn rich() -> U256 {
    U256::from(4_567u128 * 10u128.pow(18))
}

/// Storage slot of `mapping[key]` for a mapping declared at `slot` (key as a 32-byte word).
pub fn mapping_slot(slot: U256, key: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(&key.to_be_bytes::<32>());
    preimage[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

impl Builder {
    fn fund(&mut self, address: Address) {
        self.accounts.entry(address).or_default().balance = rich();
    }

    fn send(&mut self, from: Address, to: TxKind, value: U256, gas_limit: u64, data: Bytes) {
        let nonce = self.nonces.entry(from).or_default();
        self.txs.push(TxEnv {
            caller: from,
            kind: to,
            value,
            gas_limit,
            gas_price: GAS_PRICE,
            nonce: *nonce,
            data,
            ..TxEnv::default()
        });
        *nonce += 1;
    }

    fn transfer(&mut self, from: Address, to: Address, value: u64) {
        self.fund(from);
        self.send(
            from,
            TxKind::Call(to),
            U256::from(value),
            TRANSFER_GAS,
            Bytes::new(),
        );
    }

    /// Deploys the ERC-20 token and returns its address.
    fn erc20(&mut self, contracts: &Path) -> Result<Address, String> {
        let path = contracts.join("ERC20Token.hex");
        let hex = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let code: Bytes = hex
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let token = account(3 << 32);
        let token_account = self.accounts.entry(token).or_default();
        token_account.nonce = 1;
        token_account.code = Some(Bytecode::new_raw(code));
        token_account.storage.insert(U256::from(2), U256::MAX >> 1); // total supply
        token_account.storage.insert(U256::from(5), U256::from(18)); // decimals
        Ok(token)
    }

    /// Gives `holder` 1e18 tokens (a transfer to it then updates a non-zero balance).
    fn token_holder(&mut self, token: Address, holder: Address) {
        let slot = mapping_slot(U256::ZERO, address_word(holder));
        let storage = &mut self.accounts.entry(token).or_default().storage;
        storage.insert(slot, U256::from(10u128.pow(18)));
    }

    fn token_transfer(&mut self, token: Address, from: Address, to: Address, amount: u64) {
        self.fund(from);
        self.token_holder(token, from);
        let mut data = Vec::with_capacity(68);
        data.extend_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(to.as_slice());
        data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
        self.send(from, TxKind::Call(token), U256::ZERO, 35_000, data.into());
    }

    fn finish(mut self, name: &str) -> Workload {
        for (address, account) in self.accounts {
            self.provider.insert_account(address, account);
        }
        self.provider
            .insert_account(Address::ZERO, InMemoryAccount::default());
        let block = Block::new(
            &ChainSpec::from_genesis(Hardfork::Osaka, 1),
            BlockEnv::default(),
            self.txs,
        );
        Workload {
            name: name.to_string(),
            block,
            provider: self.provider,
        }
    }
}
