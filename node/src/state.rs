//! Applying a verified operation to the store: chain checks, equivocation
//! evidence, and the operation's effects on authors, money, verdicts and the
//! directory, all inside the caller's transaction and undone together if any
//! step fails.
//!
//! The state is a function of the set of operations held: balances are sums
//! of operations that count, what counts depends only on verdicts (the hub's
//! latest word on each operation) and reversals, and directory documents are
//! rebuilt from all their changes. Arrival order changes nothing.

use saldo_sync::{
    AuthorId, Body, ConsumerId, DocId, FamilyId, OpId, OpKind, RealmId, Role, Seq, ServiceId, SignedOp, Verdict,
};

use crate::directory::{self, DirectoryError};
use crate::ledger::{self, CloseFacts, Facts, LineFacts, ReversalFacts, StatusInput};
use crate::outbox;
use crate::store::{AuthorRow, NewMoneyOp, StoredVerdict, Tx};

/// Most operations kept as evidence of a fork per device (the first ones:
/// the device is frozen from the first). A restored device records its
/// second branch offline, within its offline limits (a week by default),
/// and stops once it learns it is frozen: 10,000 is some weeks of a busy
/// counter, all of it real money the hub must review.
pub const EVIDENCE_PER_AUTHOR_MAX: u64 = 10_000;

/// Who is applying: the realm and, on an authoring node, its own identity.
#[derive(Debug, Clone)]
pub struct Context {
    pub realm: RealmId,
    pub own: Option<AuthorId>,
    /// The realm's name as its genesis says it, once read: a genesis never
    /// changes, and every receipt and message to a family names the realm.
    genesis_name: std::sync::OnceLock<String>,
}

impl Context {
    pub fn new(realm: RealmId, own: Option<AuthorId>) -> Context {
        Context { realm, own, genesis_name: std::sync::OnceLock::new() }
    }

    /// The realm's name, from the hub's genesis (empty while this node
    /// does not hold it yet).
    pub fn realm_name(&self, tx: &Tx<'_>) -> Result<String, IngestError> {
        if let Some(name) = self.genesis_name.get() {
            return Ok(name.clone());
        }
        let hub = self.realm.hub();
        let Some(id) = tx.chain_op_at(&hub, Seq(1))? else { return Ok(String::new()) };
        let Some(bytes) = tx.op_bytes(&id)? else { return Ok(String::new()) };
        Ok(match SignedOp::decode(&bytes)?.op.body {
            Body::Genesis { realm_name } => self.genesis_name.get_or_init(|| realm_name.to_string()).clone(),
            _ => String::new(),
        })
    }

    pub fn is_hub(&self) -> bool {
        self.own == Some(self.realm.hub())
    }

    /// A device (cash point, school device) keeps the money of its own
    /// operations and the hub's; for the rest it takes the hub's balance
    /// checkpoints. Other devices' operations it holds are carried (stored
    /// and forwarded), not counted. The hub and key-less replicas count all.
    pub fn is_device(&self) -> bool {
        self.own.is_some() && !self.is_hub()
    }

    pub fn counts_money_of(&self, author: &AuthorId) -> bool {
        !self.is_device() || self.own == Some(*author) || *author == self.realm.hub()
    }
}

/// What happened to an operation that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored with its effects.
    New,
    /// Already held: nothing changed.
    Duplicate,
    /// A second, different operation at a sequence number already held:
    /// kept as evidence; the author is frozen.
    Equivocation { seq: Seq },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Decode(#[from] saldo_sync::DecodeError),
    #[error(transparent)]
    Signature(#[from] saldo_sync::BadSignature),
    #[error("operation {op} comes from {author:?}, a device this realm has not enrolled")]
    UnknownAuthor { op: OpId, author: AuthorId },
    #[error("operation #{got} of {author:?} arrived before #{expected}: send the author's operations in order")]
    ChainGap { author: AuthorId, expected: Seq, got: Seq },
    #[error("operation #{seq} of {author:?} does not link to the author's previous operation (broken chain)")]
    BrokenChain { author: AuthorId, seq: Seq },
    #[error("a {role} may not record a {kind} operation")]
    NotAllowed { role: &'static str, kind: &'static str },
    #[error(
        "it is the hub's contact data (parents' e-mails and phones), which only the hub keeps: a device does not store it"
    )]
    HubOnly,
    #[error(
        "it is the account of one of the hub's operators (role {0}), which only the hub keeps: a device does not store it"
    )]
    HubOnlyAccount(&'static str),
    #[error(
        "only the hub records operators' accounts (cashiers' with its own key, administrators' and clerks' with its contacts key): a {role} may not record a {account_role}'s account"
    )]
    AccountNotAllowed { role: &'static str, account_role: &'static str },
    #[error("invalid realm genesis: {0}")]
    Genesis(&'static str),
    #[error(
        "{author:?} already has {EVIDENCE_PER_AUTHOR_MAX} operations kept as evidence of a fork: no more are stored"
    )]
    EvidenceFull { author: AuthorId },
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("storage failure: {0}")]
    Storage(#[from] crate::store::StoreError),
}

impl IngestError {
    /// Whether the operation was refused before anything was written (as
    /// opposed to a storage failure, which aborts the whole transaction).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, IngestError::Storage(_))
    }

    /// Refusals that a later delivery can cure (its predecessor or its
    /// author's enrolment was still missing).
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::UnknownAuthor { .. } | IngestError::ChainGap { .. })
    }
}

/// Applies one operation whose signature was verified. Every check that can
/// refuse it runs before the first write, so a refused operation leaves the
/// transaction untouched; an error after that (storage) must abort the
/// caller's whole transaction, which [`IngestError::is_refusal`] tells apart.
pub fn apply(tx: &mut Tx<'_>, ctx: &Context, signed: &SignedOp) -> Result<Applied, IngestError> {
    apply_full(tx, ctx, signed, &mut |_, _, _| Ok(None), None)
}

/// [`apply`] for a directory change this node just made, with the view of
/// the edited document it already has (the same changes give the same view).
pub fn apply_with_view(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    view: DirectoryView,
) -> Result<Applied, IngestError> {
    apply_full(tx, ctx, signed, &mut |_, _, _| Ok(None), Some(view))
}

/// Applies the hub's own decision operation whose verdicts were already put
/// in place, one by one, as the hub took them ([`apply_deciding`]): only the
/// operation itself is stored.
pub fn apply_decided(tx: &mut Tx<'_>, ctx: &Context, signed: &SignedOp) -> Result<Applied, IngestError> {
    assert!(
        matches!(signed.op.body, Body::Decisions(_)) && Some(signed.op.author) == ctx.own && ctx.is_hub(),
        "only the hub's own decisions are applied as already decided"
    );
    let author = tx.author(&signed.op.author)?.expect("the hub is an author of its realm");
    if signed.op.seq != author.head_seq.next() || signed.op.prev != author.head_id.unwrap_or(OpId::NONE) {
        return Err(IngestError::BrokenChain { author: signed.op.author, seq: signed.op.seq });
    }
    tx.insert_op(
        &signed.id,
        &signed.op.author,
        signed.op.seq,
        signed.op.hlc.0,
        OpKind::Decisions,
        true,
        signed.as_bytes(),
        None,
    )?;
    tx.set_head(&signed.op.author, signed.op.seq, &signed.id)?;
    Ok(Applied::New)
}

/// The hub's judge: given an operation on money that is about to be stored
/// (all checks passed, nothing written yet) and its author, the verdict and
/// the hub sequence number of the decision that will carry it, or `None`.
pub type Decider<'d> = dyn FnMut(&Tx<'_>, &SignedOp, &AuthorRow) -> Result<Option<(Seq, Verdict)>, IngestError> + 'd;

/// [`apply`], with the hub's verdict taken at the last moment before the
/// writes, so the operation is stored already judged.
pub fn apply_deciding(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    decide: &mut Decider<'_>,
) -> Result<Applied, IngestError> {
    apply_full(tx, ctx, signed, decide, None)
}

fn apply_full(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    decide: &mut Decider<'_>,
    known_view: Option<DirectoryView>,
) -> Result<Applied, IngestError> {
    let op = &signed.op;
    let kind = op.body.kind();
    let genesis_name = match &op.body {
        Body::Genesis { realm_name } => {
            if op.author != ctx.realm.hub() {
                return Err(IngestError::Genesis("the genesis must be authored by the realm's hub key"));
            }
            if op.seq != Seq::FIRST {
                return Err(IngestError::Genesis("the genesis must be the hub's first operation"));
            }
            Some(realm_name.as_str())
        }
        _ => None,
    };
    let author = match (tx.author(&op.author)?, genesis_name) {
        (Some(author), _) => author,
        (None, Some(_)) => AuthorRow {
            author: op.author,
            num: 0,
            role: Role::Hub,
            name: String::new(),
            limits: None,
            revoked_after: None,
            frozen_at: None,
            head_seq: Seq(0),
            head_id: None,
        },
        (None, None) => return Err(IngestError::UnknownAuthor { op: signed.id, author: op.author }),
    };
    let (role, head_seq, head_id) = (author.role, author.head_seq, author.head_id);
    check_kept_here(ctx, role, &op.body)?;

    let expected = head_seq.next();
    let head = head_id.unwrap_or(OpId::NONE);
    if op.seq <= head_seq {
        let first = tx.chain_op_at(&op.author, op.seq)?.unwrap_or(OpId::NONE);
        if first == signed.id || tx.has_op(&signed.id)? {
            return Ok(Applied::Duplicate);
        }
        // A different operation at a sequence number already held.
        return keep_evidence(tx, ctx, signed, decide, author, first);
    }
    if op.seq == expected && op.prev != head && op.seq > Seq::FIRST {
        // The author signed this after another operation at our head's seq:
        // a second branch, whatever its length.
        if tx.has_op(&signed.id)? {
            return Ok(Applied::Duplicate);
        }
        return keep_evidence(tx, ctx, signed, decide, author, OpId::NONE);
    }
    if op.seq > expected {
        if tx.has_op(&signed.id)? {
            return Ok(Applied::Duplicate);
        }
        // A branch kept as evidence goes on past our head.
        if tx.holds_op_of(&op.author, &op.prev)? && tx.equivocations_of(&op.author)? > 0 {
            return keep_evidence(tx, ctx, signed, decide, author, OpId::NONE);
        }
        return Err(IngestError::ChainGap { author: op.author, expected, got: op.seq });
    }
    if op.prev != head {
        return Err(IngestError::BrokenChain { author: op.author, seq: op.seq });
    }
    check_allowed(role, &op.body)?;
    let directory_view = match &op.body {
        Body::Enrol { device, role, .. } if *device == ctx.realm.hub() || *role == Role::Hub => {
            return Err(IngestError::NotAllowed { role: "hub", kind: "enrolment of a second hub" });
        }
        Body::DirectoryChange { doc, change } => Some(match known_view {
            Some(view) => view,
            None => view_with(tx, doc, change)?,
        }),
        _ => None,
    };
    let decided = if kind.needs_verdict() { decide(tx, signed, &author)? } else { None };

    // Checks done: from here on, only writes.
    if let Some(name) = genesis_name {
        tx.insert_author(&op.author, Role::Hub, name, None)?;
    }
    let money = money_row(tx, ctx, signed, decided)?;
    let row = tx.insert_op(&signed.id, &op.author, op.seq, op.hlc.0, kind, true, signed.as_bytes(), money.as_ref())?;
    tx.set_head(&op.author, op.seq, &signed.id)?;
    match &op.body {
        Body::Genesis { .. } | Body::Heartbeat => {}
        Body::Enrol { device, role, name, limits } => tx.insert_author(device, *role, name.as_str(), Some(limits))?,
        Body::Revoke { device, last_seq_seen, .. } => tx.set_revoked(device, *last_seq_seen)?,
        Body::ChangeLimits { device, limits } => tx.set_limits(device, limits)?,
        Body::Decisions(decisions) => {
            for decision in decisions {
                if !ctx.counts_money_of(&decision.author) {
                    continue;
                }
                if tx.put_verdict(&decision.target, op.seq, &decision.verdict)? {
                    refresh(tx, ctx, &decision.target)?;
                }
            }
        }
        Body::DirectoryChange { doc, .. } => {
            tx.add_dir_change(&doc.key(), row)?;
            if let Some(view) = directory_view {
                write_view(tx, view)?;
            }
        }
        Body::BalanceCheckpoint { as_of, balances } => {
            // The hub and full replicas count every operation themselves.
            if ctx.is_device() {
                for entry in balances {
                    tx.apply_checkpoint(&entry.wallet.consumer, &entry.wallet.service, *as_of, entry.balance)?;
                    place_on_checkpoint(tx, ctx, &entry.wallet.consumer, &entry.wallet.service)?;
                }
            }
        }
        Body::EscrowGrant { device, wallet, amount } => {
            tx.add_escrow(device, &wallet.consumer, &wallet.service, amount.minor())?
        }
        Body::Operator(account) => {
            // A device keeps the accounts of its own cashiers only: the
            // others are of no use there (nobody else logs in at it).
            if ctx.is_device() && account.cash_point != ctx.own {
                tx.remove_operator(&account.login)?;
            } else {
                tx.put_operator(account, &op.author, op.seq, &signed.id)?;
            }
        }
        Body::TopUp(_)
        | Body::DuePayment(_)
        | Body::ServiceCharge(_)
        | Body::Reversal { .. }
        | Body::Transfer(_)
        | Body::Refund(_)
        | Body::Remittance { .. }
        | Body::DailyClose { .. } => {
            if let Some(money) = &money {
                money_effects(tx, ctx, signed, row, money)?;
            }
        }
    }
    Ok(Applied::New)
}

/// Keeps `signed`, an operation of its author on a branch other than the
/// chain this node holds (`first` is the chain's operation at its seq, if
/// any), as evidence: the author is frozen, and on the hub an operation on
/// money is judged (flagged, for review) and counts once accepted.
fn keep_evidence(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    decide: &mut Decider<'_>,
    author: AuthorRow,
    first: OpId,
) -> Result<Applied, IngestError> {
    let op = &signed.op;
    let kind = op.body.kind();
    // Bounded, so a frozen device cannot fill the disk with forks.
    if tx.equivocations_of(&op.author)? >= EVIDENCE_PER_AUTHOR_MAX {
        return Err(IngestError::EvidenceFull { author: op.author });
    }
    let frozen = AuthorRow { frozen_at: Some(author.frozen_at.map_or(op.seq, |f| f.min(op.seq))), ..author };
    let decided = if kind.needs_verdict() { decide(tx, signed, &frozen)? } else { None };
    let money = money_row(tx, ctx, signed, decided)?;
    let row = tx.insert_op(&signed.id, &op.author, op.seq, op.hlc.0, kind, false, signed.as_bytes(), money.as_ref())?;
    tx.insert_equivocation(&op.author, op.seq, &first, &signed.id)?;
    tx.set_frozen(&op.author, op.seq)?;
    if let Some(money) = &money {
        money_effects(tx, ctx, signed, row, money)?;
    }
    Ok(Applied::Equivocation { seq: op.seq })
}

/// What only the hub keeps never enters a device, whoever delivers it (a
/// bundle the hub made for itself, a peer that should not have it): every
/// operation of the hub's contacts key, and contact data from any author.
/// Checked before anything else about the operation (its place in the
/// chain too), so each such operation is refused for this reason, stored
/// nowhere, not even as evidence of a fork.
fn check_kept_here(ctx: &Context, role: Role, body: &Body) -> Result<(), IngestError> {
    if !ctx.is_device() {
        return Ok(());
    }
    match body {
        Body::Operator(account) if !account.role.works_at_cash_point() => {
            Err(IngestError::HubOnlyAccount(account.role.name()))
        }
        Body::DirectoryChange { doc: DocId::Contacts(_), .. } => Err(IngestError::HubOnly),
        _ if role == Role::HubContacts => Err(IngestError::HubOnly),
        _ => Ok(()),
    }
}

/// Operations that change who may do what, or the directory, come only from
/// the hub; contact data only from the hub's contacts key, so that it stays
/// in that key's log, which never leaves the hub, and so do administrators'
/// and clerks' accounts (cashiers' are in the hub's log, which devices
/// receive). Operations on money from any enrolled device are kept, and
/// the hub judges them.
fn check_allowed(role: Role, body: &Body) -> Result<(), IngestError> {
    let kind = body.kind();
    if let Body::Operator(account) = body {
        let key_role = if account.role.works_at_cash_point() { Role::Hub } else { Role::HubContacts };
        if role != key_role {
            return Err(IngestError::AccountNotAllowed { role: role.name(), account_role: account.role.name() });
        }
        return Ok(());
    }
    let allowed = match body {
        _ if kind.needs_verdict() => true,
        Body::DirectoryChange { doc: DocId::Contacts(_), .. } => role == Role::HubContacts,
        _ => role == Role::Hub,
    };
    if allowed { Ok(()) } else { Err(IngestError::NotAllowed { role: role.name(), kind: kind.name() }) }
}

/// What the log keeps of an operation on money whose amounts this node
/// keeps (`None` for any other operation), given the hub's verdict when it
/// was just taken (otherwise one held, if any): read before the operation
/// is stored, with it.
fn money_row<'s>(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &'s SignedOp,
    decided: Option<(Seq, Verdict)>,
) -> Result<Option<NewMoneyOp<'s>>, IngestError> {
    let op = &signed.op;
    if !(op.body.kind().needs_verdict() && ctx.counts_money_of(&op.author)) {
        return Ok(None);
    }
    let total_minor = money_total(&op.body);
    let (receipt, reference, reverses, range, method) = match &op.body {
        Body::TopUp(t) => (Some(t.receipt), None, None, None, Some(t.method.name())),
        Body::DuePayment(p) => (Some(p.receipt), Some(p.due.as_str()), None, None, Some(p.method.name())),
        Body::ServiceCharge(c) => (None, Some(c.reference.as_str()), None, None, None),
        Body::Reversal { target, .. } => (None, None, Some(target), None, None),
        Body::Transfer(_) => (None, None, None, None, None),
        Body::Refund(r) => (None, None, None, None, Some(r.method.name())),
        Body::Remittance { receipts, .. } => (None, None, None, Some(*receipts), Some("cash")),
        Body::DailyClose { receipts, .. } => (None, None, None, *receipts, None),
        _ => unreachable!("money_row is called for operations on money only"),
    };
    let decided_here = decided.is_some();
    let stored = match decided {
        Some((hub_seq, verdict)) => Some(StoredVerdict { hub_seq, verdict }),
        None => tx.take_early_verdict(&signed.id)?,
    };
    // An operation of the hub itself is accepted by being recorded.
    let verdict = match &stored {
        Some(v) => Some(v.verdict.clone()),
        None if op.author == ctx.realm.hub() => Some(Verdict::Accepted),
        None => None,
    };
    let is_reversal = reverses.is_some();
    // A reversal of this operation may have arrived first on a replica (from
    // the hub); on the hub, which judges operations as they arrive in chain
    // order, none can precede what it is deciding now.
    let reversals = if is_reversal || decided_here { Vec::new() } else { tx.reversals_of(&signed.id)? };
    let (counts, counts_provisional) = ledger::status(StatusInput {
        accepted: verdict.as_ref().is_some_and(Verdict::counts),
        pending: verdict.is_none(),
        own: ctx.own == Some(op.author),
        is_reversal,
        reversed: reversals.iter().any(|r| r.1),
        reversed_provisionally: reversals.iter().any(|r| r.2),
    });
    Ok(Some(NewMoneyOp {
        receipt,
        reference,
        reverses,
        range,
        method,
        total_minor,
        counts,
        counts_provisional,
        verdict: stored,
        // The hub keeps each author's running total of the money it moved,
        // against which it checks the author's unconfirmed total.
        running_minor: match decided_here {
            true => Some(
                tx.running_total(&op.author, None)?
                    + if ledger::offline_limits_apply(op.body.kind()) { total_minor } else { 0 },
            ),
            false => None,
        },
    }))
}

/// The effects of an operation on money stored as `row`: its wallet lines,
/// what it adds to the wallets, and how it changes what it reverses.
fn money_effects(
    tx: &mut Tx<'_>,
    ctx: &Context,
    signed: &SignedOp,
    row: i64,
    money: &NewMoneyOp<'_>,
) -> Result<(), IngestError> {
    let deltas = signed.op.body.wallet_deltas();
    let (counts, counts_provisional) = (money.counts, money.counts_provisional);
    let mut nums = Vec::with_capacity(deltas.len());
    for (line, (wallet, delta)) in deltas.iter().enumerate() {
        let num = tx.insert_money_line(row, line, &wallet.consumer, &wallet.service, *delta)?;
        if counts || counts_provisional {
            let (confirmed, provisional) = (i64::from(counts) * delta, i64::from(counts_provisional) * delta);
            tx.add_to_wallet_num(num, confirmed, provisional);
        }
        nums.push(num);
    }
    // A reversal changes how its target counts; a target that arrives after
    // its reversal found it above.
    if let (Some(target), true) = (money.reverses, counts || counts_provisional) {
        refresh(tx, ctx, target)?;
    }
    for (wallet, _) in &deltas {
        place_on_checkpoint(tx, ctx, &wallet.consumer, &wallet.service)?;
    }
    // At the hub, what counts is announced to the family (its receipt, a
    // reminder when a balance crossed a threshold) in this transaction.
    if counts && ctx.is_hub() {
        for (wallet, _) in &deltas {
            outbox::reminders::balance_changed(tx, ctx, &wallet.consumer, &wallet.service, &signed.id)?;
        }
        outbox::queue::receipt_counted(tx, ctx, signed, row, Some(&nums))?;
    }
    Ok(())
}

/// The money an operation handles, in cents: what per-operation limits,
/// unconfirmed totals and daily closes add up.
pub fn money_total(body: &Body) -> i64 {
    match body {
        Body::TopUp(t) => t.lines.iter().map(|l| l.amount.minor()).sum(),
        Body::DuePayment(p) => p.amount.minor(),
        Body::ServiceCharge(c) => c.amount.minor(),
        Body::Transfer(t) => t.amount.minor(),
        Body::Refund(r) => r.amount.minor(),
        Body::Remittance { amount, .. } => amount.minor(),
        Body::DailyClose { total, .. } => total.minor(),
        _ => 0,
    }
}

/// Recomputes whether a money operation counts, and moves the difference
/// into its wallets. A no-op for ids that are not money operations held here.
/// On a device, a wallet with a hub checkpoint is the checkpoint plus what
/// the lines held here add to it: for each, whether it counts now minus
/// whether the hub counted it as of the checkpoint; provisional adds this
/// device's lines awaiting a verdict. Derived whole, so the order in which
/// operations, verdicts and checkpoints arrive (a reinstalled device gets
/// its own operations back after the hub's verdicts on them) cannot count
/// anything twice. Wallets without a checkpoint add up their lines as the
/// hub does.
fn place_on_checkpoint(
    tx: &Tx<'_>,
    ctx: &Context,
    consumer: &ConsumerId,
    service: &ServiceId,
) -> Result<(), IngestError> {
    if !ctx.is_device() {
        return Ok(());
    }
    let Some((as_of, balance)) = tx.checkpoint(consumer, service)? else {
        return Ok(());
    };
    let (mut confirmed, mut pending) = (balance, 0);
    for (delta, counts, counts_provisional, counted_then) in
        tx.wallet_lines_against(consumer, service, &ctx.realm.hub(), as_of)?
    {
        confirmed += delta * (i64::from(counts) - i64::from(counted_then));
        pending += delta * (i64::from(counts_provisional) - i64::from(counts));
    }
    tx.set_wallet(consumer, service, confirmed, confirmed + pending)?;
    Ok(())
}

/// Recomputes how an operation counts after its verdict or a reversal of it changed.
pub fn refresh(tx: &mut Tx<'_>, ctx: &Context, id: &OpId) -> Result<(), IngestError> {
    let Some(row) = tx.money_op(id)? else {
        return Ok(());
    };
    let verdict: Option<Verdict> =
        if row.author == ctx.realm.hub() { Some(Verdict::Accepted) } else { tx.verdict(id)?.map(|v| v.verdict) };
    let is_reversal = row.kind == OpKind::Reversal.name();
    let (reversed, reversed_provisionally) = if is_reversal {
        (false, false)
    } else {
        let reversals = tx.reversals_of(id)?;
        (reversals.iter().any(|r| r.1), reversals.iter().any(|r| r.2))
    };
    let (counts, counts_provisional) = ledger::status(StatusInput {
        accepted: verdict.as_ref().is_some_and(Verdict::counts),
        pending: verdict.is_none(),
        own: ctx.own == Some(row.author),
        is_reversal,
        reversed,
        reversed_provisionally,
    });
    if (counts, counts_provisional) == (row.counts, row.counts_provisional) {
        return Ok(());
    }
    tx.set_money_status(row.row, counts, counts_provisional)?;
    let confirmed_sign = i64::from(counts) - i64::from(row.counts);
    let provisional_sign = i64::from(counts_provisional) - i64::from(row.counts_provisional);
    let lines = tx.money_lines(row.row)?;
    for (consumer, service, delta) in &lines {
        tx.add_to_wallet(consumer, service, confirmed_sign * delta, provisional_sign * delta)?;
        place_on_checkpoint(tx, ctx, consumer, service)?;
    }
    if let Some(target) = row.reverses.filter(|_| is_reversal) {
        refresh(tx, ctx, &target)?;
    }
    // At the hub: an operation accepted in review (or no longer reversed)
    // is announced now; every confirmed move may cross a reminder threshold.
    if ctx.is_hub() && confirmed_sign != 0 {
        for (consumer, service, _) in &lines {
            outbox::reminders::balance_changed(tx, ctx, consumer, service, id)?;
        }
        if counts && crate::outbox::queue::kind_has_receipt(&row.kind) {
            outbox::queue::receipt_counted_by_id(tx, ctx, id, row.row)?;
        }
    }
    Ok(())
}

/// What a directory document says, ready to be written to the materialised tables.
#[derive(Debug)]
pub enum DirectoryView {
    Family(Option<directory::FamilyRecord>),
    Contacts(FamilyId, directory::ContactRecord),
    Service(Option<directory::ServiceRecord>),
}

/// The view of `doc` with every change held plus `change`, computed before
/// anything is written (a change that does not parse refuses its operation).
fn view_with(tx: &Tx<'_>, doc: &DocId, change: &[u8]) -> Result<DirectoryView, IngestError> {
    let mut changes = doc_changes(tx, doc)?;
    changes.push(change.to_vec());
    Ok(view_of(doc, &directory::load(changes)?))
}

/// What document `doc` says, as it stands in `state`.
pub fn view_of(doc: &DocId, state: &automerge::AutoCommit) -> DirectoryView {
    match doc {
        DocId::Family(family) => DirectoryView::Family(directory::read_family(state, *family)),
        DocId::Contacts(family) => DirectoryView::Contacts(*family, directory::read_contacts(state)),
        DocId::Service(_) => DirectoryView::Service(directory::read_service(state)),
    }
}

fn write_view(tx: &Tx<'_>, view: DirectoryView) -> Result<(), IngestError> {
    match view {
        DirectoryView::Family(Some(record)) => tx.put_family(&record)?,
        DirectoryView::Contacts(family, record) => tx.put_contacts(&family, &record)?,
        DirectoryView::Service(Some(record)) => tx.put_service(&record)?,
        DirectoryView::Family(None) | DirectoryView::Service(None) => {}
    }
    Ok(())
}

fn doc_changes(tx: &Tx<'_>, doc: &DocId) -> Result<Vec<Vec<u8>>, IngestError> {
    let mut changes = Vec::new();
    for bytes in tx.dir_change_ops(&doc.key())? {
        let signed = SignedOp::decode(&bytes)?;
        if let Body::DirectoryChange { change, .. } = signed.op.body {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// The Automerge document `doc` as the changes held make it.
pub fn load_doc(tx: &Tx<'_>, doc: &DocId) -> Result<automerge::AutoCommit, IngestError> {
    Ok(directory::load(doc_changes(tx, doc)?)?)
}

/// Gathers what the hub needs to decide on a money operation that is about
/// to be stored (so it is not among what the queries see).
pub fn gather_facts(tx: &Tx<'_>, hub: &AuthorId, signed: &SignedOp, author: &AuthorRow) -> Result<Facts, IngestError> {
    let op = &signed.op;
    let mut facts = Facts {
        kind: Some(op.body.kind()),
        author_role: Some(author.role),
        seq: op.seq,
        revoked_after: author.revoked_after,
        frozen_at: author.frozen_at,
        second_branch: op.seq <= author.head_seq || op.prev != author.head_id.unwrap_or(OpId::NONE),
        receipt: match &op.body {
            Body::TopUp(t) => Some(t.receipt.0),
            Body::DuePayment(p) => Some(p.receipt.0),
            _ => None,
        },
        per_operation_limit_minor: author.limits.map(|l| l.per_operation.minor()),
        ..Facts::default()
    };
    facts.total_minor = money_total(&op.body);
    if let Some(limits) =
        author.limits.filter(|_| author.role != Role::Hub && ledger::offline_limits_apply(op.body.kind()))
    {
        // What the device held of the hub's log: no more than the hub has
        // written (a claim beyond it is checked as no contact at all).
        let head = tx.author(hub)?.map_or(Seq(0), |a| a.head_seq);
        let held = op.hub_seen.0 > 0 && op.hub_seen <= head;
        let hub_ms = if held { tx.op_wall_ms(hub, op.hub_seen)? } else { None };
        let decided_by = if held { op.hub_seen } else { Seq(0) };
        facts.offline = Some(ledger::OfflineFacts {
            unconfirmed_limit_minor: limits.unconfirmed_total.minor(),
            offline_limit_secs: limits.offline_secs_max,
            hub_seen: op.hub_seen,
            unconfirmed_before_minor: tx.running_total(&op.author, None)?
                - tx.running_total(&op.author, Some(decided_by))?,
            offline_ms: hub_ms.map(|ms| op.hlc.wall_ms().saturating_sub(ms)),
        });
    }
    for (wallet, delta) in op.body.wallet_deltas() {
        // Enrolment implies the consumer exists; balances matter for debits only.
        let enrolled = tx.is_enrolled(&wallet.consumer, &wallet.service)?;
        let consumer_known = enrolled || tx.consumer(&wallet.consumer)?.is_some();
        let (confirmed_minor, floor_minor) = if delta < 0 {
            (
                tx.wallet(&wallet.consumer, &wallet.service)?.confirmed.minor()
                    - tx.escrow_outstanding(&wallet.consumer, &wallet.service)?,
                tx.service(&wallet.service)?.map_or(0, |service| service.floor.minor()),
            )
        } else {
            (0, 0)
        };
        facts.lines.push(LineFacts {
            wallet,
            consumer_known,
            enrolled,
            confirmed_minor,
            floor_minor,
            delta_minor: delta,
        });
    }
    match &op.body {
        Body::TopUp(t) => facts.duplicate_receipt = tx.receipt_not_above_last(&op.author, t.receipt)?,
        Body::DuePayment(p) => {
            facts.duplicate_receipt = tx.receipt_not_above_last(&op.author, p.receipt)?;
            facts.duplicate_reference =
                tx.reference_used(OpKind::DuePayment, p.due.as_str(), &p.wallet.consumer, &p.wallet.service)?;
        }
        Body::ServiceCharge(c) => {
            if author.role != Role::Hub {
                let (granted, used) = tx.escrow_of(&op.author, &c.wallet.consumer, &c.wallet.service)?;
                facts.escrow_remaining_minor = Some(granted - used);
            }
            facts.duplicate_reference =
                tx.reference_used(OpKind::ServiceCharge, c.reference.as_str(), &c.wallet.consumer, &c.wallet.service)?;
        }
        Body::Reversal { target, .. } => {
            let target_row = tx.money_op(target)?;
            let already_reversed = tx.reversals_of(target)?.iter().any(|r| r.1);
            facts.reversal = Some(ReversalFacts {
                target_found: target_row.is_some(),
                target_is_top_up: target_row.as_ref().is_some_and(|t| t.kind == OpKind::TopUp.name()),
                same_author: target_row.as_ref().is_some_and(|t| t.author == op.author),
                already_reversed,
                receipt_closed: match target_row.as_ref().and_then(|t| t.receipt) {
                    Some(receipt) => tx.receipt_closed(&op.author, receipt)?,
                    None => false,
                },
            });
        }
        Body::DailyClose { receipts, count, total, .. } => {
            let (counted, counted_minor) = match receipts {
                Some(range) => {
                    let (n, sum, _) = tx.receipt_range_totals(&op.author, range.first, range.last)?;
                    (n, sum)
                }
                None => (0, 0),
            };
            facts.close = Some(CloseFacts {
                declared_count: Some(u64::from(*count)),
                declared_minor: total.minor(),
                counted,
                counted_minor,
            });
        }
        Body::Remittance { receipts, amount, .. } => {
            let (_, _, cash) = tx.receipt_range_totals(&op.author, receipts.first, receipts.last)?;
            facts.close = Some(CloseFacts {
                declared_count: None,
                declared_minor: amount.minor(),
                counted: 0,
                counted_minor: cash,
            });
        }
        _ => {}
    }
    Ok(facts)
}
