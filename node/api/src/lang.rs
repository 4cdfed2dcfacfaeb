//! The languages the operators' screens and receipts speak.

use serde::{Deserialize, Serialize};

/// A language for labels and messages: Italian by default, English available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    It,
    En,
}

impl Lang {
    /// Picks the Italian or the English text.
    pub fn pick<'a>(self, it: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::It => it,
            Lang::En => en,
        }
    }
}
