//! Hybrid logical clocks (Kulkarni et al., 2014): wall-clock milliseconds in
//! the high 48 bits, a counter in the low 16. They order operations for
//! display; no correctness decision depends on them.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Hlc(pub u64);

impl Hlc {
    const COUNTER_BITS: u32 = 16;

    pub fn from_parts(wall_ms: u64, counter: u16) -> Hlc {
        Hlc((wall_ms << Self::COUNTER_BITS) | u64::from(counter))
    }

    pub fn wall_ms(self) -> u64 {
        self.0 >> Self::COUNTER_BITS
    }

    /// The next timestamp for a local event: after `last` and not before `now_ms`.
    pub fn tick(last: Hlc, now_ms: u64) -> Hlc {
        let candidate = Hlc::from_parts(now_ms, 0);
        if candidate > last { candidate } else { Hlc(last.0 + 1) }
    }

    /// After receiving `remote`, the local clock is at least `remote`.
    pub fn observe(last: Hlc, remote: Hlc) -> Hlc {
        last.max(remote)
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({}+{})", self.wall_ms(), self.0 & 0xffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_never_go_backwards_when_the_wall_clock_does() {
        let a = Hlc::tick(Hlc::default(), 1_000);
        let b = Hlc::tick(a, 900);
        let c = Hlc::tick(b, 900);
        assert!(a < b && b < c);
        assert_eq!(Hlc::tick(c, 2_000).wall_ms(), 2_000);
        assert_eq!(Hlc::observe(a, c), c);
    }
}
