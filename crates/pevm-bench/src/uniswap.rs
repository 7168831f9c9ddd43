//! The Uniswap V3 swap workload: independent clusters (two tokens, a pool, the router and a
//! swap helper) set up in the pre-state as `../shared/contracts/README.md` describes, and
//! traders swapping through them.

use std::path::Path;

use alloy_primitives::{hex, keccak256, Address, Bytes, U256};
use pevm_vm::{revm::bytecode::Bytecode, InMemoryAccount};

use crate::gigagas::mapping_slot;

/// The contracts of one cluster, by address.
pub struct Cluster {
    /// The swap helper traders call.
    pub single_swap: Address,
    /// token0 ("DAI") and token1 ("USDC").
    pub tokens: [Address; 2],
    /// The accounts to put into the pre-state.
    pub accounts: Vec<(Address, InMemoryAccount)>,
}

/// Compiled runtime code of the contracts, placeholders not yet replaced.
pub struct Contracts {
    erc20: String,
    weth: String,
    factory: String,
    pool: String,
    router: String,
    single_swap: String,
}

/// The pool init-code hash compiled into `SwapRouter.hex`; pools are placed at the CREATE2
/// address computed with it.
const INIT_CODE_HASH: &str = "636fcf59d7fdf3a03833dba1c6d936c9d7c6730057c8c4c8e5059feaeab60e04";

/// Liquidity of the single full-range position.
const LIQUIDITY: u128 = 0x178756e190b388651605;

/// Gas limit of a swap: enough for every swap to succeed.
pub const SWAP_GAS: u64 = 300_000;

impl Contracts {
    /// Reads the `.hex` files from `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_lowercase())
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        Ok(Self {
            erc20: read("ERC20Token.hex")?,
            weth: read("WETH9.hex")?,
            factory: read("UniswapV3Factory.hex")?,
            pool: read("UniswapV3Pool.hex")?,
            router: read("SwapRouter.hex")?,
            single_swap: read("SingleSwap.hex")?,
        })
    }

    /// Cluster number `n`, whose traders are `traders`.
    pub fn cluster(&self, n: u64, traders: &[Address]) -> Cluster {
        let base = |k: u64| {
            let mut bytes = [0u8; 20];
            bytes[0] = 0xc0;
            bytes[4..12].copy_from_slice(&n.to_be_bytes());
            bytes[12..].copy_from_slice(&k.to_be_bytes());
            Address::from(bytes)
        };
        let (weth, token0, token1, factory, router, single_swap) =
            (base(1), base(2), base(3), base(4), base(5), base(6));
        let pool = pool_address(factory, token0, token1);
        let mut accounts = Vec::new();
        for token in [token0, token1] {
            accounts.push((token, self.token(pool, single_swap, traders)));
        }
        accounts.push((weth, contract(&self.weth, &[])));
        let factory_account = self.factory(factory, [token0, token1], pool, base(7));
        accounts.push((factory, factory_account));

        let mut pool_account = contract(
            &self.pool,
            &[
                ("261d8c5e9742e6f7f1076fa1f560894524e19cad", token0),
                ("ce3478a9e0167a6bc5716dc39dbbbfac38f27623", token1),
                ("cba6b9a951749b8735c603e7ffc5151849248772", factory),
                ("d495d5e5cab2567777fff988c4fcd71328b17c9d", pool),
            ],
        );
        pool_state(&mut pool_account.storage, base(8));
        accounts.push((pool, pool_account));

        let mut router_account = contract(
            &self.router,
            &[
                ("6509f2a854ba7441039fce3b959d5badd2ffcfcd", weth),
                ("d787a42ee3ac477c46dd6c912e7af795d44453d5", factory),
            ],
        );
        router_account.storage.insert(U256::ZERO, U256::MAX);
        accounts.push((router, router_account));

        let mut swap_account = contract(
            &self.single_swap,
            &[("e7cfcccb38ce07ba9d8d13431afe8cf6172de031", router)],
        );
        swap_account
            .storage
            .insert(U256::ZERO, address_word(token0));
        swap_account.storage.insert(
            U256::from(1),
            address_word(token1) | (U256::from(3000) << 160),
        );
        accounts.push((single_swap, swap_account));

        Cluster {
            single_swap,
            tokens: [token0, token1],
            accounts,
        }
    }

    /// A token of a cluster: the pool holds 111,111e18; each trader 1e18, with an allowance
    /// for `single_swap`.
    fn token(&self, pool: Address, single_swap: Address, traders: &[Address]) -> InMemoryAccount {
        let mut account = contract(&self.erc20, &[]);
        let storage = &mut account.storage;
        storage.insert(U256::from(2), U256::from(222_222u128 * 10u128.pow(18)));
        storage.insert(U256::from(5), U256::from(18));
        storage.insert(
            mapping_slot(U256::ZERO, address_word(pool)),
            U256::from(111_111u128 * 10u128.pow(18)),
        );
        for &trader in traders {
            storage.insert(
                mapping_slot(U256::ZERO, address_word(trader)),
                U256::from(10u128.pow(18)),
            );
            let allowances = mapping_slot(U256::from(1), address_word(trader));
            storage.insert(
                mapping_slot(allowances, address_word(single_swap)),
                U256::from(10u128.pow(18)),
            );
        }
        account
    }

    /// The factory at `address` (owner `owner`): the three fee tiers, and `pool` registered
    /// for `tokens` at the 0.3% tier.
    fn factory(
        &self,
        address: Address,
        tokens: [Address; 2],
        pool: Address,
        owner: Address,
    ) -> InMemoryAccount {
        let mut account = contract(
            &self.factory,
            &[("0b748751e6f8b1a38c9386a19d9f8966b3593a9e", address)],
        );
        let storage = &mut account.storage;
        storage.insert(U256::from(3), address_word(owner));
        for (fee, spacing) in [(500u64, 10u64), (3000, 60), (10000, 200)] {
            storage.insert(
                mapping_slot(U256::from(4), U256::from(fee)),
                U256::from(spacing),
            );
        }
        let [token0, token1] = tokens;
        for (a, b) in [(token0, token1), (token1, token0)] {
            let slot = mapping_slot(
                mapping_slot(
                    mapping_slot(U256::from(5), address_word(a)),
                    address_word(b),
                ),
                U256::from(3000),
            );
            storage.insert(slot, address_word(pool));
        }
        account
    }
}

/// The calldata of a trader's swap number `nonce`: sell token0, sell token1, buy token0,
/// buy token1, in turn.
pub fn swap_calldata(nonce: u64) -> Bytes {
    let word = |x: u64| U256::from(x).to_be_bytes::<32>();
    let mut data = Vec::with_capacity(68);
    match nonce % 4 {
        0 => data.extend_from_slice(&hex!("c92b0891")),
        1 => data.extend_from_slice(&hex!("6b055260")),
        2 => data.extend_from_slice(&hex!("8dc33f82")),
        _ => data.extend_from_slice(&hex!("b2db18a2")),
    }
    if nonce % 4 < 2 {
        data.extend_from_slice(&word(2000));
    } else {
        data.extend_from_slice(&word(1000));
        data.extend_from_slice(&word(2000));
    }
    data.into()
}

/// An address as a storage word.
pub fn address_word(address: Address) -> U256 {
    U256::from_be_slice(address.as_slice())
}

/// The CREATE2 address of the fee-3000 pool of `token0`/`token1`.
fn pool_address(factory: Address, token0: Address, token1: Address) -> Address {
    let mut salt = [0u8; 96];
    salt[12..32].copy_from_slice(token0.as_slice());
    salt[44..64].copy_from_slice(token1.as_slice());
    salt[92..].copy_from_slice(&3000u32.to_be_bytes());
    let mut preimage = Vec::with_capacity(85);
    preimage.push(0xff);
    preimage.extend_from_slice(factory.as_slice());
    preimage.extend_from_slice(keccak256(salt).as_slice());
    preimage.extend_from_slice(&hex::decode(INIT_CODE_HASH).expect("hash hex"));
    Address::from_slice(&keccak256(preimage)[12..])
}

/// A signed number as a storage word (two's complement, sign-extended).
fn signed_word(x: i64) -> U256 {
    if x < 0 {
        U256::MAX - U256::from(x.unsigned_abs() - 1)
    } else {
        U256::from(x)
    }
}

/// The pool's storage: price 1, one full-range position of `owner` over ticks ±600000.
fn pool_state(storage: &mut std::collections::HashMap<U256, U256>, owner: Address) {
    let word = |s: &str| U256::from_str_radix(s, 16).expect("word hex");
    storage.insert(
        U256::ZERO,
        word("0001000001000100000000000000000000000001000000000000000000000000"),
    );
    storage.insert(U256::from(4), U256::from(LIQUIDITY));
    storage.insert(
        U256::from(8),
        word("0100000000000000000000000000000000000000000000000000000000000001"),
    );
    let ticks = [
        (
            -600_000i64,
            "000000000000178756e190b388651605000000000000178756e190b388651605",
            "0100000001000000000000000000000000000000000000000000000000000000",
        ),
        (
            600_000,
            "ffffffffffffe878a91e6f4c779ae9fb000000000000178756e190b388651605",
            "0100000000000000000000000000000000000000000000000000000000000000",
        ),
    ];
    for (tick, first, last) in ticks {
        let slot = mapping_slot(U256::from(5), signed_word(tick));
        storage.insert(slot, word(first));
        storage.insert(slot + U256::from(3), word(last));
    }
    // Tick bitmap: tick / 60 = ∓10000, word ∓40 (arithmetic shift), bits 240 and 16.
    storage.insert(
        mapping_slot(U256::from(6), signed_word(-40)),
        U256::from(1) << 240,
    );
    storage.insert(
        mapping_slot(U256::from(6), signed_word(39)),
        U256::from(1) << 16,
    );
    // Position key: keccak256(owner ++ int24 -600000 ++ int24 600000), packed.
    let mut key = Vec::with_capacity(26);
    key.extend_from_slice(owner.as_slice());
    key.extend_from_slice(&(-600_000i32).to_be_bytes()[1..]);
    key.extend_from_slice(&600_000i32.to_be_bytes()[1..]);
    let position = mapping_slot(U256::from(7), U256::from_be_bytes(keccak256(key).0));
    storage.insert(position, U256::from(LIQUIDITY));
}

/// A contract (nonce 1) from the hex of its bytecode, with each placeholder address of
/// `swaps` replaced by the given one.
fn contract(hex: &str, swaps: &[(&str, Address)]) -> InMemoryAccount {
    let mut code = hex.to_string();
    for (placeholder, address) in swaps {
        code = code.replace(placeholder, &hex::encode(address));
    }
    let code = Bytes::from(hex::decode(code).expect("contract hex"));
    InMemoryAccount {
        nonce: 1,
        code: Some(Bytecode::new_raw(code)),
        ..Default::default()
    }
}
