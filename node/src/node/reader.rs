//! A node opened to read (the service layer's read connections), and what
//! front ends show of it: the device's and the realm's names.

use std::path::Path;

use saldo_sync::Seq;

use super::{Node, Result};
use crate::store::Tx;

/// Milliseconds since the epoch, by this machine's clock.
pub fn wall_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Node {
    /// Opens the node in `dir` on a connection of its own, without its
    /// keys: it reads, and can sign nothing.
    pub fn open_to_read(dir: &Path) -> Result<Node> {
        let mut node = Node::open(dir)?;
        node.me.key = None;
        node.me.contacts_key = None;
        Ok(node)
    }

    /// This device's name as the hub enrolled it (the realm's for the hub).
    pub fn own_device_name(&mut self) -> Result<String> {
        if self.is_hub() {
            return self.realm_display_name();
        }
        let Some(me) = self.me.ctx.own else { return Ok(String::new()) };
        Ok(self.store.read()?.author(&me)?.map(|a| a.name).unwrap_or_default())
    }

    /// The realm's name: from its genesis, which every node holds.
    pub fn realm_display_name(&mut self) -> Result<String> {
        let tx = self.store.read()?;
        realm_name_in(&self.me, &tx)
    }
}

/// The realm's name: as this node was created with it, or from the genesis.
pub(crate) fn realm_name_in(me: &super::Me, tx: &Tx<'_>) -> Result<String> {
    if !me.realm_name.is_empty() {
        return Ok(me.realm_name.clone());
    }
    Ok(me.ctx.realm_name(tx)?)
}

/// The hub's public URL (`meta`): where receipts' verification links point.
pub const META_PUBLIC_URL: &str = "public_url";

impl Node {
    /// A text value of `meta`.
    pub fn meta_text(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.store.read()?.meta(key)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub fn set_meta_text(&mut self, key: &str, value: &str) -> Result<()> {
        let tx = self.store.write()?;
        tx.set_meta(key, value.as_bytes())?;
        self.me.commit(tx)?;
        Ok(())
    }
}

/// Wallets whose balances moved, with their balances now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalletChanges {
    pub wallets: Vec<crate::store::WalletRow>,
    /// More moved than are listed: a listener reloads what it shows.
    pub overflowed: bool,
}

impl WalletChanges {
    pub fn is_empty(&self) -> bool {
        self.wallets.is_empty() && !self.overflowed
    }
}

impl Node {
    /// Forgets which wallets moved (nobody listens).
    pub fn forget_wallet_changes(&mut self) {
        drop(self.store.take_moved_wallets());
    }

    /// The wallets this node's transactions moved since the last call,
    /// with their balances as committed.
    pub fn take_wallet_changes(&mut self) -> WalletChanges {
        let moved = self.store.take_moved_wallets();
        if moved.overflowed || moved.wallets.is_empty() {
            return WalletChanges { wallets: Vec::new(), overflowed: moved.overflowed };
        }
        let read = |store: &mut crate::store::Store| -> Result<Vec<crate::store::WalletRow>> {
            let tx = store.read()?;
            moved.wallets.iter().map(|(consumer, service)| Ok(tx.wallet(consumer, service)?)).collect()
        };
        match read(&mut self.store) {
            Ok(wallets) => WalletChanges { wallets, overflowed: false },
            Err(e) => {
                tracing::warn!("cannot read the wallets that moved: {e}");
                WalletChanges { wallets: Vec::new(), overflowed: true }
            }
        }
    }
}

impl Node {
    /// The chain of one author's log, in order: what a node shares of it.
    pub fn operations_of(&mut self, author: &saldo_sync::AuthorId) -> Result<Vec<Vec<u8>>> {
        let tx = self.store.read()?;
        let chain = tx.chain_range(author, Seq(1), Seq(u64::MAX >> 1), usize::MAX >> 1, usize::MAX)?;
        Ok(chain.into_iter().map(|op| op.bytes).collect())
    }
}
