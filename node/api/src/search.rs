//! Finding a consumer the way an operator does: by PAN, by codice fiscale
//! (the child's or the payer's, typed, scanned or read from the CRS/CNS card),
//! or by a prefix of surname and/or name, case- and accent-insensitive
//! ("nicolo" finds "Nicolò", "dangelo" finds "D'Angelo"). The node and the web UI
//! both parse with [`parse_query`], so the UI refuses exactly what the server would.

use saldo_sync::values::fold_for_search;
use saldo_sync::{CodiceFiscale, Pan};

/// Most consumers one search returns.
pub const SEARCH_RESULTS_MAX: u32 = 50;
/// Shortest name prefix searched (shorter ones match too much to help).
pub const NAME_PREFIX_CHARS_MIN: usize = 2;

/// The index keys of a consumer: surname, name, "surname name" and "name surname", folded.
pub fn keys_for(surname: &str, name: &str) -> Vec<String> {
    let (surname, name) = (fold_for_search(surname), fold_for_search(name));
    let mut keys = vec![format!("{surname}{name}"), format!("{name}{surname}"), surname, name];
    keys.sort();
    keys.dedup();
    keys
}

/// What the operator typed, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Pan(Pan),
    FiscalCode(CodiceFiscale),
    NamePrefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("type at least {NAME_PREFIX_CHARS_MIN} letters of a surname or name, a PAN or a codice fiscale")]
    TooShort,
    #[error("{0}")]
    BadPan(saldo_sync::PanError),
}

pub fn parse_query(text: &str) -> Result<Query, QueryError> {
    let trimmed = text.trim();
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.is_empty() && compact.chars().all(|c| c.is_ascii_digit()) {
        return Pan::parse(&compact).map(Query::Pan).map_err(QueryError::BadPan);
    }
    if let Ok(code) = CodiceFiscale::parse(&compact) {
        return Ok(Query::FiscalCode(code));
    }
    let folded = fold_for_search(trimmed);
    if folded.chars().count() < NAME_PREFIX_CHARS_MIN {
        return Err(QueryError::TooShort);
    }
    Ok(Query::NamePrefix(folded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_understood_as_operators_type_them() {
        assert!(matches!(parse_query("4111 1111 1111 1111"), Ok(Query::Pan(_))));
        assert!(matches!(parse_query("4111 1111 1111 1112"), Err(QueryError::BadPan(_))));
        assert!(matches!(parse_query("rssmra85t10a562s"), Ok(Query::FiscalCode(_))));
        assert_eq!(parse_query("D'Angelo"), Ok(Query::NamePrefix("dangelo".into())));
        assert_eq!(parse_query("Rossi Mario"), Ok(Query::NamePrefix("rossimario".into())));
        assert_eq!(parse_query("r"), Err(QueryError::TooShort));
        assert!(keys_for("D'Angelo", "Nicolò").contains(&"nicolodangelo".to_string()));
    }
}
