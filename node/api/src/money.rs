//! Amounts as Italians write and read them: `1.234,50 €` on screens and
//! receipts, and whatever an operator reasonably types into an amount box
//! (`20`, `20,5`, `20,50`, `20.50`, `1.234,50`, `1234.50`), understood one way
//! only. JSON keeps carrying the canonical `"1234.50"` of [`Amount`].

use saldo_sync::values::AMOUNT_MINOR_MAX;
use saldo_sync::{Amount, Balance};

use crate::Lang;

/// `1.234,50 €`: Italian thousands dots and decimal comma, a minus sign for
/// a negative balance.
pub fn format_eur(balance: Balance) -> String {
    format_eur_cents(balance.minor())
}

/// [`format_eur`] of an [`Amount`].
pub fn format_amount(amount: Amount) -> String {
    format_eur_cents(amount.minor())
}

/// [`format_eur`] of a number of cents.
pub fn format_eur_cents(cents: i64) -> String {
    let magnitude = cents.unsigned_abs();
    let units = (magnitude / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3 + 8);
    for (index, digit) in units.chars().enumerate() {
        if index > 0 && (units.len() - index).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{grouped},{:02} €", magnitude % 100)
}

/// Why what was typed into an amount box is not an amount. Each message
/// says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountInputError {
    #[error("type an amount in euro, like 20 or 20,50")]
    Empty,
    #[error("\"{0}\" uses an exponent: type the amount in plain digits, like 1000")]
    Exponent(String),
    #[error("\"{0}\" is negative: type the amount without a sign, like 5; what happens to the money is chosen apart")]
    Negative(String),
    #[error("\"{0}\" is not an amount: type digits and at most one decimal comma, like 20,50")]
    NotANumber(String),
    #[error(
        "\"{0}\" is ambiguous: amounts have at most two decimals, so write 12,34 for twelve euro and 34 cents, or 1234 for one thousand two hundred and thirty-four euro"
    )]
    ThreeDecimals(String),
    #[error("\"{0}\" has more than two decimals: amounts are in euro and cents, like 12,34")]
    TooPrecise(String),
    #[error("\"{0}\" has its thousands separators in the wrong place: write 1.234,50 or 1234,50")]
    Grouping(String),
    #[error("the amount is zero: type what is paid, like 20")]
    Zero,
    #[error("\"{0}\" is over the limit of 5.000,00 € for one line: split it, or check the amount")]
    OverLimit(String),
}

impl AmountInputError {
    /// The message in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        if lang == Lang::En {
            return self.to_string();
        }
        match self {
            AmountInputError::Empty => "scrivi un importo in euro, per esempio 20 o 20,50".into(),
            AmountInputError::Exponent(t) => {
                format!("\"{t}\" usa un esponente: scrivi l'importo in cifre, per esempio 1000")
            }
            AmountInputError::Negative(t) => format!("\"{t}\" è negativo: scrivi l'importo senza segno, per esempio 5"),
            AmountInputError::NotANumber(t) => {
                format!("\"{t}\" non è un importo: scrivi cifre e al più una virgola decimale, per esempio 20,50")
            }
            AmountInputError::ThreeDecimals(t) => format!(
                "\"{t}\" è ambiguo: gli importi hanno al più due decimali, scrivi 12,34 per dodici euro e trentaquattro centesimi, o 1234 per milleduecentotrentaquattro euro"
            ),
            AmountInputError::TooPrecise(t) => {
                format!("\"{t}\" ha più di due decimali: gli importi sono in euro e centesimi, per esempio 12,34")
            }
            AmountInputError::Grouping(t) => {
                format!("\"{t}\" ha i separatori delle migliaia fuori posto: scrivi 1.234,50 o 1234,50")
            }
            AmountInputError::Zero => "l'importo è zero: scrivi quanto viene pagato, per esempio 20".into(),
            AmountInputError::OverLimit(t) => {
                format!("\"{t}\" supera il limite di 5.000,00 € per riga: dividilo, o controlla l'importo")
            }
        }
    }
}

/// Most characters an amount box takes (longer input is refused, not read).
pub const AMOUNT_INPUT_CHARS_MAX: usize = 32;

/// Parses what an operator typed into an amount box.
///
/// One reading only: the last separator (`,` or `.`) followed by one or two
/// digits is the decimal one; separators before it group thousands in threes
/// and must all be the same. A single separator followed by exactly three
/// digits (`12,345`, `12.345`) could be either, so it is refused with a
/// message that says how to write each. A `€` sign and spaces around are
/// ignored. Limits are those of [`Amount`]: above zero, at most 5.000,00 €.
pub fn parse_amount_input(text: &str) -> Result<Amount, AmountInputError> {
    let typed = text.trim();
    if typed.chars().count() > AMOUNT_INPUT_CHARS_MAX {
        return Err(AmountInputError::NotANumber(typed.chars().take(AMOUNT_INPUT_CHARS_MAX).collect::<String>() + "…"));
    }
    let core = typed.trim_start_matches('€').trim_end_matches('€').trim();
    let owned = || typed.to_owned();
    if core.is_empty() {
        return Err(AmountInputError::Empty);
    }
    if core.contains(['e', 'E']) && core.chars().all(|c| c.is_ascii_digit() || ".,eE+-".contains(c)) {
        return Err(AmountInputError::Exponent(owned()));
    }
    if core.starts_with('-') || core.starts_with('−') {
        return Err(AmountInputError::Negative(owned()));
    }
    let core = core.strip_prefix('+').unwrap_or(core);
    if !core.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return Err(AmountInputError::NotANumber(owned()));
    }
    let separators: Vec<(usize, char)> = core.char_indices().filter(|(_, c)| *c == '.' || *c == ',').collect();
    let (integer, decimals): (String, &str) = match separators.as_slice() {
        [] => (core.to_owned(), ""),
        [(at, _)] => {
            let (before, after) = (&core[..*at], &core[at + 1..]);
            match after.len() {
                1 | 2 => (before.to_owned(), after),
                3 => return Err(AmountInputError::ThreeDecimals(owned())),
                0 => return Err(AmountInputError::NotANumber(owned())),
                _ => return Err(AmountInputError::TooPrecise(owned())),
            }
        }
        [.., (last_at, last)] => {
            let (first_at, first) = separators[0];
            let grouping = first;
            let all_grouping_same = separators[..separators.len() - 1].iter().all(|(_, c)| *c == grouping);
            // Either "1.234.567" (all the same: no decimals) or "1.234,50"
            // (the last one differs: it is the decimal separator).
            let (grouped, decimals) = if *last == grouping && all_grouping_same {
                (core, "")
            } else if *last != grouping && all_grouping_same {
                (&core[..*last_at], &core[last_at + 1..])
            } else {
                return Err(AmountInputError::Grouping(owned()));
            };
            if decimals.len() > 2 {
                return Err(AmountInputError::TooPrecise(owned()));
            }
            if *last != grouping && decimals.is_empty() {
                return Err(AmountInputError::NotANumber(owned()));
            }
            let groups: Vec<&str> = grouped.split(grouping).collect();
            let head_ok = (1..=3).contains(&groups[0].len()) && first_at > 0;
            if !head_ok || groups[1..].iter().any(|g| g.len() != 3) {
                return Err(AmountInputError::Grouping(owned()));
            }
            (groups.concat(), decimals)
        }
    };
    if integer.is_empty() && decimals.is_empty() {
        return Err(AmountInputError::NotANumber(owned()));
    }
    let integer = integer.trim_start_matches('0');
    // More digits than any amount has: over the limit, without overflow.
    if integer.len() > 7 {
        return Err(AmountInputError::OverLimit(owned()));
    }
    let units: i64 =
        if integer.is_empty() { 0 } else { integer.parse().map_err(|_| AmountInputError::NotANumber(owned()))? };
    let mut cents: i64 = 0;
    for (index, digit) in decimals.bytes().enumerate() {
        cents += i64::from(digit - b'0') * if index == 0 { 10 } else { 1 };
    }
    let minor = units * 100 + cents;
    if minor == 0 {
        return Err(AmountInputError::Zero);
    }
    if minor > AMOUNT_MINOR_MAX {
        return Err(AmountInputError::OverLimit(owned()));
    }
    Ok(Amount::from_minor(minor).expect("checked above: positive and within the limit"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cents(text: &str) -> Result<i64, AmountInputError> {
        parse_amount_input(text).map(Amount::minor)
    }

    #[test]
    fn amounts_print_the_italian_way() {
        assert_eq!(format_eur_cents(123_450), "1.234,50 €");
        assert_eq!(format_eur_cents(5), "0,05 €");
        assert_eq!(format_eur_cents(0), "0,00 €");
        assert_eq!(format_eur_cents(-2_000), "-20,00 €");
        assert_eq!(format_eur_cents(100_000_000), "1.000.000,00 €");
        assert_eq!(format_eur_cents(99_999), "999,99 €");
        assert_eq!(format_eur(Balance::from_minor(-123_456_789).unwrap()), "-1.234.567,89 €");
        assert_eq!(format_amount(Amount::from_minor(2_050).unwrap()), "20,50 €");
        assert_eq!(format_eur_cents(i64::MIN), "-92.233.720.368.547.758,08 €");
    }

    #[test]
    fn what_operators_type_is_read_one_way() {
        assert_eq!(cents("20"), Ok(2_000));
        assert_eq!(cents("20,5"), Ok(2_050));
        assert_eq!(cents("20,50"), Ok(2_050));
        assert_eq!(cents("20.50"), Ok(2_050));
        assert_eq!(cents("1.234,50"), Ok(123_450));
        assert_eq!(cents("1234.50"), Ok(123_450));
        assert_eq!(cents("1234,50"), Ok(123_450));
        assert_eq!(cents("1,234.50"), Ok(123_450));
        assert_eq!(cents(" 20 € "), Ok(2_000));
        assert_eq!(cents("€ 20,50"), Ok(2_050));
        assert_eq!(cents(",50"), Ok(50));
        assert_eq!(cents("0,01"), Ok(1));
        assert_eq!(cents("5000"), Ok(500_000));
    }

    #[test]
    fn three_digits_after_one_separator_are_refused_as_ambiguous() {
        for text in ["12,345", "12.345", "1.234", "1,234"] {
            let error = parse_amount_input(text).unwrap_err();
            assert_eq!(error, AmountInputError::ThreeDecimals(text.into()));
            let message = error.to_string();
            assert!(message.contains("at most two decimals") && message.contains("12,34") && message.contains("1234"));
            assert!(error.message(Lang::It).contains("al più due decimali"));
        }
    }

    #[test]
    fn refusals_say_what_to_type() {
        assert_eq!(parse_amount_input("-5"), Err(AmountInputError::Negative("-5".into())));
        assert_eq!(parse_amount_input("0"), Err(AmountInputError::Zero));
        assert_eq!(parse_amount_input("0,00"), Err(AmountInputError::Zero));
        assert_eq!(parse_amount_input("1e3"), Err(AmountInputError::Exponent("1e3".into())));
        assert_eq!(parse_amount_input(""), Err(AmountInputError::Empty));
        assert_eq!(parse_amount_input("  "), Err(AmountInputError::Empty));
        assert_eq!(parse_amount_input("20,"), Err(AmountInputError::NotANumber("20,".into())));
        assert_eq!(parse_amount_input("venti"), Err(AmountInputError::NotANumber("venti".into())));
        assert_eq!(parse_amount_input("12,3456"), Err(AmountInputError::TooPrecise("12,3456".into())));
        assert_eq!(parse_amount_input("1.234.5"), Err(AmountInputError::Grouping("1.234.5".into())));
        assert_eq!(parse_amount_input("12.34,5"), Err(AmountInputError::Grouping("12.34,5".into())));
        assert_eq!(parse_amount_input("1.234,567"), Err(AmountInputError::TooPrecise("1.234,567".into())));
        assert_eq!(parse_amount_input("1,2.3,4"), Err(AmountInputError::Grouping("1,2.3,4".into())));
        assert_eq!(parse_amount_input("5000,01"), Err(AmountInputError::OverLimit("5000,01".into())));
        assert_eq!(
            parse_amount_input("99999999999999999999"),
            Err(AmountInputError::OverLimit("99999999999999999999".into()))
        );
        for error in [
            AmountInputError::Empty,
            AmountInputError::Zero,
            AmountInputError::Negative("-5".into()),
            AmountInputError::Exponent("1e3".into()),
        ] {
            assert!(error.to_string().contains("type"), "{error}");
            assert!(error.message(Lang::It).contains("scrivi"), "{}", error.message(Lang::It));
        }
    }

    proptest! {
        #[test]
        fn every_amount_printed_the_italian_way_reads_back(minor in 1i64..=AMOUNT_MINOR_MAX) {
            let printed = format_eur_cents(minor);
            prop_assert_eq!(cents(&printed), Ok(minor));
            let canonical = Amount::from_minor(minor).unwrap().to_string();
            prop_assert_eq!(cents(&canonical), Ok(minor));
            prop_assert_eq!(cents(&canonical.replace('.', ",")), Ok(minor));
        }

        #[test]
        fn anything_typed_is_an_amount_within_limits_or_a_refusal(text in "[0-9.,€e -]{0,12}") {
            if let Ok(amount) = parse_amount_input(&text) {
                prop_assert!(amount.minor() > 0 && amount.minor() <= AMOUNT_MINOR_MAX);
            }
        }

        #[test]
        fn the_server_reads_the_canonical_form_as_the_box_does(minor in 1i64..=AMOUNT_MINOR_MAX) {
            let canonical = Amount::from_minor(minor).unwrap().to_string();
            prop_assert_eq!(Amount::parse(&canonical).map(Amount::minor).ok(), cents(&canonical).ok());
        }
    }
}
