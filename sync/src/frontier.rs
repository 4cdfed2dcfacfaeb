//! Frontiers: for each author, the highest contiguous sequence number held and
//! the id of the operation there. Two nodes compare frontiers to find what one
//! lacks; the same seq with a different head id exposes a fork (equivocation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AuthorId, OpId, Seq};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontierEntry {
    pub seq: Seq,
    pub head: OpId,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier(pub BTreeMap<AuthorId, FrontierEntry>);

/// What one frontier says about another, per author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The other side lacks operations `after`+1 ..= `upto` of this author.
    Behind { author: AuthorId, after: Seq, upto: Seq },
    /// Both hold the same seq with different ids: the author forked.
    Fork { author: AuthorId, seq: Seq, ours: OpId, theirs: OpId },
}

impl Frontier {
    pub fn get(&self, author: &AuthorId) -> Option<FrontierEntry> {
        self.0.get(author).copied()
    }

    /// What `theirs` lacks of ours (authors where we are ahead), and forks seen
    /// at equal sequence numbers.
    pub fn ahead_of(&self, theirs: &Frontier) -> Vec<Difference> {
        let mut out = Vec::new();
        for (author, ours) in &self.0 {
            match theirs.0.get(author) {
                None => out.push(Difference::Behind { author: *author, after: Seq(0), upto: ours.seq }),
                Some(their) if their.seq < ours.seq => {
                    out.push(Difference::Behind { author: *author, after: their.seq, upto: ours.seq })
                }
                // An unknown head (NONE: the peer left it out) is no fork.
                Some(their) if their.seq == ours.seq && their.head != ours.head && their.head != OpId::NONE => {
                    out.push(Difference::Fork { author: *author, seq: ours.seq, ours: ours.head, theirs: their.head })
                }
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontiers_show_what_the_other_side_lacks_and_forks() {
        let (a, b, c) = (AuthorId([1; 32]), AuthorId([2; 32]), AuthorId([3; 32]));
        let entry = |seq, h| FrontierEntry { seq: Seq(seq), head: OpId([h; 32]) };
        let ours = Frontier([(a, entry(5, 1)), (b, entry(2, 2)), (c, entry(3, 3))].into_iter().collect());
        let theirs = Frontier([(a, entry(3, 9)), (c, entry(3, 4))].into_iter().collect());
        let diff = ours.ahead_of(&theirs);
        assert_eq!(diff.len(), 3);
        assert!(diff.contains(&Difference::Behind { author: a, after: Seq(3), upto: Seq(5) }));
        assert!(diff.contains(&Difference::Behind { author: b, after: Seq(0), upto: Seq(2) }));
        assert!(diff.contains(&Difference::Fork {
            author: c,
            seq: Seq(3),
            ours: OpId([3; 32]),
            theirs: OpId([4; 32])
        }));
    }
}
