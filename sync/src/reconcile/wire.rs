//! The sync protocol on the wire: its name and version, the limits a
//! message must keep, the [`Message`]s themselves and the forms in which a
//! hello carries a frontier, decoded from untrusted bytes without panicking.

use serde::{Deserialize, Serialize};

use crate::frontier::{Frontier, FrontierEntry};
use crate::ids::{AuthorId, OpId, RealmId, Seq};
use crate::op::SIGNED_OP_BYTES_MAX;

/// The ALPN of Saldo's sync protocol over QUIC.
pub const ALPN: &[u8] = b"saldo/sync/1";
/// Version 2 added fork probes, fork requests and fork summaries.
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest message on the wire (a frontier of many authors, or a batch).
pub const MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most authors a frontier may list.
pub const FRONTIER_AUTHORS_MAX: usize = 50_000;
/// Most operations in one batch, and the bytes a batch aims to stay under.
pub const BATCH_OPS_MAX: usize = 4096;
pub const BATCH_BYTES_TARGET: usize = 1024 * 1024;
/// Most ids in a fork probe (a head and seqs spaced by powers of two below it).
pub const FORK_PROBE_IDS_MAX: usize = 64;
/// Most authors a fork summary lists, and most ids per author.
pub const FORK_SUMMARIES_MAX: usize = 64;
pub const FORK_SUMMARY_IDS_MAX: usize = 1024;
/// Most fork probes and fork requests a side answers in one session.
pub const FORK_ANSWERS_PER_SESSION_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Hello(Hello),
    /// Signed operations, in chain order per author.
    Ops(Vec<Vec<u8>>),
    /// Everything the peer lacked as of its hello has been sent.
    Done,
    /// The sender will not sync, and why.
    Refused(String),
    /// The responder does not hold the base of a `Since` hello: send the whole frontier.
    NeedWhole,
    /// The sender found that `author` forked: its chain's ids at its head and
    /// at seqs spaced by powers of two below, highest first.
    ForkProbe {
        author: AuthorId,
        ids: Vec<(Seq, OpId)>,
    },
    /// Send every operation of `author` held from `from` on, on any branch.
    ForkFrom {
        author: AuthorId,
        from: Seq,
    },
    /// Authors the sender holds evidence of a fork on, with the ids it holds
    /// from the fork on.
    Forks(Vec<ForkSummary>),
}

/// What a side holds of a forked author, from the lowest seq where it holds
/// two operations on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkSummary {
    pub author: AuthorId,
    pub from: Seq,
    pub ids: Vec<OpId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub realm: RealmId,
    pub frontier: FrontierForm,
}

/// How a hello carries the sender's frontier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontierForm {
    /// The whole frontier (about 70 bytes per author).
    Whole(Frontier),
    /// The initiator's frontier as changes to the one it sent this peer
    /// last time, named by its hash: peers that synced before exchange
    /// only what moved since.
    Since { base: [u8; 32], changes: Vec<Change> },
    /// The responder's answer: only where it differs from the initiator.
    Answer(Vec<Change>),
}

/// One author's entry, relative to a frontier both sides know (the base).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub author: AuthorRef,
    /// 0: none of this author's operations.
    pub seq: Seq,
    /// The id at `seq`; left out where the other side cannot hold the same
    /// seq (it is not needed to tell a fork).
    pub head: Option<OpId>,
}

/// An author named by its place in the base frontier (in author order), or in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorRef {
    At(u32),
    Id(AuthorId),
}

/// The hash that names a frontier as the base of changes.
pub fn frontier_hash(frontier: &Frontier) -> [u8; 32] {
    *blake3::hash(&postcard::to_stdvec(frontier).expect("encoding to a Vec")).as_bytes()
}

/// What changed from `base` to `now`, entries named relative to `base`.
/// `heads_where(base entry, entry now)` says whether the head must be sent.
pub(super) fn changes(
    base: &Frontier,
    now: &Frontier,
    heads_where: impl Fn(Option<FrontierEntry>, FrontierEntry) -> bool,
) -> Vec<Change> {
    let index: std::collections::BTreeMap<&AuthorId, u32> =
        base.0.keys().enumerate().map(|(i, a)| (a, i as u32)).collect();
    let name = |author: &AuthorId| index.get(author).map_or(AuthorRef::Id(*author), |i| AuthorRef::At(*i));
    let mut out = Vec::new();
    for (author, entry) in &now.0 {
        let before = base.get(author);
        if before != Some(*entry) {
            let head = heads_where(before, *entry).then_some(entry.head);
            out.push(Change { author: name(author), seq: entry.seq, head });
        }
    }
    for author in base.0.keys().filter(|a| !now.0.contains_key(a)) {
        out.push(Change { author: name(author), seq: Seq(0), head: None });
    }
    out
}

/// `base` with `changes` applied; `None` if a change names no author of `base`.
pub(super) fn apply_changes(base: &Frontier, changes: Vec<Change>) -> Option<Frontier> {
    let authors: Vec<AuthorId> = base.0.keys().copied().collect();
    let mut out = base.clone();
    for change in changes {
        let author = match change.author {
            AuthorRef::At(i) => *authors.get(i as usize)?,
            AuthorRef::Id(author) => author,
        };
        if change.seq == Seq(0) {
            out.0.remove(&author);
        } else {
            out.0.insert(author, FrontierEntry { seq: change.seq, head: change.head.unwrap_or(OpId::NONE) });
        }
    }
    Some(out)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("a sync message of {0} bytes is over the limit of {MESSAGE_BYTES_MAX}")]
    TooLarge(usize),
    #[error("a malformed sync message: {0}")]
    Malformed(String),
    #[error("a frontier of {0} authors is over the limit of {FRONTIER_AUTHORS_MAX}")]
    FrontierTooLarge(usize),
    #[error("a batch of {0} operations is over the limit of {BATCH_OPS_MAX}")]
    BatchTooLarge(usize),
    #[error("an operation of {0} bytes in a batch is over the limit of {SIGNED_OP_BYTES_MAX}")]
    OpTooLarge(usize),
    #[error("a fork probe of {0} ids is over the limit of {FORK_PROBE_IDS_MAX}")]
    ProbeTooLarge(usize),
    #[error("a fork summary is over the limit of {FORK_SUMMARIES_MAX} authors and {FORK_SUMMARY_IDS_MAX} ids each")]
    SummaryTooLarge,
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("encoding to a Vec cannot fail")
    }

    /// Decodes untrusted bytes: bounded, and never panics.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(WireError::TooLarge(bytes.len()));
        }
        let (message, rest): (Message, _) =
            postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!("{} bytes after the message", rest.len())));
        }
        match &message {
            Message::Hello(hello) if hello.frontier.len() > FRONTIER_AUTHORS_MAX => {
                Err(WireError::FrontierTooLarge(hello.frontier.len()))
            }
            Message::Ops(ops) if ops.len() > BATCH_OPS_MAX => Err(WireError::BatchTooLarge(ops.len())),
            Message::Ops(ops) => match ops.iter().find(|op| op.len() > SIGNED_OP_BYTES_MAX) {
                Some(op) => Err(WireError::OpTooLarge(op.len())),
                None => Ok(message),
            },
            Message::ForkProbe { ids, .. } if ids.len() > FORK_PROBE_IDS_MAX => {
                Err(WireError::ProbeTooLarge(ids.len()))
            }
            Message::Forks(summaries)
                if summaries.len() > FORK_SUMMARIES_MAX
                    || summaries.iter().any(|s| s.ids.len() > FORK_SUMMARY_IDS_MAX) =>
            {
                Err(WireError::SummaryTooLarge)
            }
            _ => Ok(message),
        }
    }
}

impl FrontierForm {
    /// How many entries it lists.
    pub fn len(&self) -> usize {
        match self {
            FrontierForm::Whole(f) => f.0.len(),
            FrontierForm::Since { changes, .. } | FrontierForm::Answer(changes) => changes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
