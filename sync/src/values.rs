//! Validated value types: a value of one of these types is already valid.
//!
//! `Amount` (euro, two decimals, positive, bounded), `Balance` (signed euro),
//! `Pan` (ISO/IEC 7812 style personal account number with a Luhn check
//! digit), `CodiceFiscale` (the Italian tax code, with its check character and
//! *omocodia* letters), bounded names and texts, and `ServiceId`.
//! Every constructor parses; every error says what to fix. Nothing here does
//! I/O, so the web UI (wasm32) can share it.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Largest amount of one operation line, in cents: 5,000.00 EUR.
pub const AMOUNT_MINOR_MAX: i64 = 500_000;
/// Largest magnitude of a balance, in cents (a sanity bound far above any real wallet).
pub const BALANCE_MINOR_MAX: i64 = 1_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty: type an amount in euro, like 12.50")]
    Empty,
    #[error("\"{0}\" is not an amount: use digits with at most one decimal separator, like 12.50")]
    NotANumber(String),
    #[error("\"{0}\" uses an exponent: write the amount in plain digits, like 1000.00")]
    Exponent(String),
    #[error("\"{0}\" is negative: amounts are positive; the operation says whether money comes in or goes out")]
    Negative(String),
    #[error("\"{0}\" has more than two decimals: amounts are in euro and cents, like 12.34")]
    TooPrecise(String),
    #[error("the amount must be greater than zero")]
    Zero,
    #[error("{0} is over the limit of 5000.00 EUR for one operation")]
    OverLimit(String),
}

/// A positive amount of money in euro with at most two decimals, at most
/// [`AMOUNT_MINOR_MAX`] cents. Built only by [`Amount::parse`] or
/// [`Amount::from_minor`]; excess precision is rejected, never rounded.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    /// Parses what an operator types: `12.50`, `12,50` (Italian decimal comma) or `12`.
    pub fn parse(text: &str) -> Result<Amount, AmountError> {
        let minor = parse_cents(text)?;
        Amount::from_minor(minor).map_err(|e| match e {
            AmountError::OverLimit(_) => AmountError::OverLimit(text.trim().to_owned()),
            other => other,
        })
    }

    /// Builds an amount from cents.
    pub fn from_minor(minor: i64) -> Result<Amount, AmountError> {
        if minor < 0 {
            return Err(AmountError::Negative(format_minor(minor)));
        }
        if minor == 0 {
            return Err(AmountError::Zero);
        }
        if minor > AMOUNT_MINOR_MAX {
            return Err(AmountError::OverLimit(format_minor(minor)));
        }
        Ok(Amount(minor))
    }

    /// The amount in cents.
    pub fn minor(self) -> i64 {
        self.0
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

/// Parses a non-negative euro amount as typed into cents, without limits
/// beyond overflow.
fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.contains(['e', 'E']) {
        return Err(AmountError::Exponent(text.to_owned()));
    }
    if text.strip_prefix('-').is_some_and(|rest| !rest.is_empty()) {
        return Err(AmountError::Negative(text.to_owned()));
    }
    let not_a_number = || AmountError::NotANumber(text.to_owned());
    let (units, cents) = match text.find(['.', ',']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(units) || !digits_only(cents) || (units.is_empty() && cents.is_empty()) {
        return Err(not_a_number());
    }
    if text.find(['.', ',']).is_some() && cents.is_empty() {
        return Err(not_a_number());
    }
    let cents_trimmed = cents;
    if cents_trimmed.len() > 2 {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let units = units.trim_start_matches('0');
    if units.len() > 12 {
        return Err(AmountError::OverLimit(text.to_owned()));
    }
    let units: i64 = if units.is_empty() { 0 } else { units.parse().map_err(|_| not_a_number())? };
    let mut cents_value: i64 = 0;
    for (index, digit) in cents_trimmed.bytes().enumerate() {
        let weight = if index == 0 { 10 } else { 1 };
        cents_value += i64::from(digit - b'0') * weight;
    }
    let minor = units
        .checked_mul(100)
        .and_then(|m| m.checked_add(cents_value))
        .ok_or_else(|| AmountError::OverLimit(text.to_owned()))?;
    Ok(minor)
}

fn format_minor(minor: i64) -> String {
    Decimal::new(minor, 2).to_string()
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minor(self.0))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self)
    }
}

// JSON carries amounts as strings ("12.50"); the binary operation encoding
// carries cents as an integer. Both paths validate on the way in.
impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Amount::parse(&text).map_err(serde::de::Error::custom)
        } else {
            let minor = i64::deserialize(deserializer)?;
            Amount::from_minor(minor).map_err(serde::de::Error::custom)
        }
    }
}

/// A signed wallet balance in cents (a wallet may go below zero down to its floor).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Balance(i64);

impl Balance {
    pub const ZERO: Balance = Balance(0);

    pub fn from_minor(minor: i64) -> Option<Balance> {
        (minor.abs() <= BALANCE_MINOR_MAX).then_some(Balance(minor))
    }

    pub fn minor(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, delta_minor: i64) -> Option<Balance> {
        self.0.checked_add(delta_minor).and_then(Balance::from_minor)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Parses a signed euro amount such as `-50.00` (used for wallet floors).
    pub fn parse(text: &str) -> Result<Balance, AmountError> {
        let text = text.trim();
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let minor = parse_cents(rest)?;
        let minor = if negative { -minor } else { minor };
        Balance::from_minor(minor).ok_or_else(|| AmountError::OverLimit(text.to_owned()))
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minor(self.0))
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Balance({})", self)
    }
}

impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Balance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let out_of_range = || serde::de::Error::custom("balance out of range");
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Balance::parse(&text).map_err(serde::de::Error::custom)
        } else {
            Balance::from_minor(i64::deserialize(deserializer)?).ok_or_else(out_of_range)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("the PAN is empty: type the code printed on the family's card or letter")]
    Empty,
    #[error("the PAN contains '{0}': a PAN has only digits (spaces between groups are fine)")]
    NotADigit(char),
    #[error("the PAN has {0} digits: a PAN has 8 to 19 digits")]
    Length(usize),
    #[error("the PAN's last digit does not match (check digit should be {expected}): check for a mistyped digit")]
    CheckDigit { expected: u8 },
}

/// A personal account number: 8 to 19 digits, the last a Luhn check digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pan(String);

impl Pan {
    pub const DIGITS_MIN: usize = 8;
    pub const DIGITS_MAX: usize = 19;

    pub fn parse(text: &str) -> Result<Pan, PanError> {
        let mut digits = String::with_capacity(text.len());
        for ch in text.chars() {
            if ch == ' ' {
                continue;
            }
            if !ch.is_ascii_digit() {
                return Err(PanError::NotADigit(ch));
            }
            digits.push(ch);
        }
        if digits.is_empty() {
            return Err(PanError::Empty);
        }
        if !(Self::DIGITS_MIN..=Self::DIGITS_MAX).contains(&digits.len()) {
            return Err(PanError::Length(digits.len()));
        }
        let (body, check) = digits.split_at(digits.len() - 1);
        let expected = luhn_check_digit(body);
        if check.as_bytes()[0] - b'0' != expected {
            return Err(PanError::CheckDigit { expected });
        }
        Ok(Pan(digits))
    }

    /// Completes `body` (7 to 18 digits) with its Luhn check digit.
    pub fn with_check_digit(body: &str) -> Result<Pan, PanError> {
        let expected = luhn_check_digit(body);
        Pan::parse(&format!("{body}{expected}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PAN as printed on a receipt: all but the last four digits hidden.
    pub fn masked(&self) -> String {
        let visible = 4.min(self.0.len());
        let hidden = self.0.len() - visible;
        format!("{}{}", "*".repeat(hidden), &self.0[hidden..])
    }
}

fn luhn_check_digit(body: &str) -> u8 {
    let mut sum: u32 = 0;
    for (index, digit) in body.bytes().rev().enumerate() {
        let mut value = u32::from(digit.wrapping_sub(b'0') % 10);
        if index % 2 == 0 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    ((10 - sum % 10) % 10) as u8
}

impl TryFrom<String> for Pan {
    type Error = PanError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Pan::parse(&value)
    }
}

impl From<Pan> for String {
    fn from(value: Pan) -> Self {
        value.0
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodiceFiscaleError {
    #[error(
        "the codice fiscale has {0} characters: it has 16 (6 letters, 2 digits, a letter, 2 digits, a letter, 3 digits, a letter)"
    )]
    Length(usize),
    #[error("character {position} of the codice fiscale is '{found}': {expected} expected there")]
    Shape { position: usize, found: char, expected: &'static str },
    #[error("the codice fiscale's month letter '{0}' is not one of A B C D E H L M P R S T")]
    Month(char),
    #[error("the codice fiscale's day of birth {0} is not 1-31 (or 41-71 for women)")]
    Day(u32),
    #[error(
        "the codice fiscale's check character is '{found}' but should be '{expected}': check for a mistyped character"
    )]
    CheckCharacter { found: char, expected: char },
}

/// An Italian codice fiscale of a person: 16 characters with a valid check
/// character. *Omocodia* variants (digits replaced by L M N P Q R S T U V) are
/// accepted as they are: they are distinct, valid codes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CodiceFiscale(String);

const OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";
// Values of characters in odd positions (1st, 3rd, ...), for 0-9 then A-Z.
const ODD_DIGITS: [u32; 10] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21];
const ODD_LETTERS: [u32; 26] =
    [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

impl CodiceFiscale {
    pub fn parse(text: &str) -> Result<CodiceFiscale, CodiceFiscaleError> {
        let code: String = text.trim().chars().filter(|c| *c != ' ').flat_map(char::to_uppercase).collect();
        let count = code.chars().count();
        if count != 16 {
            return Err(CodiceFiscaleError::Length(count));
        }
        let bytes = code.as_bytes();
        // 16 chars and 16 bytes: every character is ASCII from here on.
        if bytes.len() != 16 {
            let (position, found) = code
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii())
                .expect("a 16-character string longer than 16 bytes has a non-ASCII character");
            return Err(CodiceFiscaleError::Shape { position: position + 1, found, expected: "a letter or digit" });
        }
        let letter = |i: usize| -> Result<(), CodiceFiscaleError> {
            if bytes[i].is_ascii_uppercase() {
                Ok(())
            } else {
                Err(CodiceFiscaleError::Shape { position: i + 1, found: bytes[i] as char, expected: "a letter" })
            }
        };
        let digit_like = |i: usize| -> Result<u32, CodiceFiscaleError> {
            let b = bytes[i];
            if b.is_ascii_digit() {
                Ok(u32::from(b - b'0'))
            } else if let Some(value) = OMOCODIA_LETTERS.iter().position(|l| *l == b) {
                Ok(value as u32)
            } else {
                Err(CodiceFiscaleError::Shape {
                    position: i + 1,
                    found: b as char,
                    expected: "a digit (or an omocodia letter L-V)",
                })
            }
        };
        for i in 0..6 {
            letter(i)?;
        }
        digit_like(6)?;
        digit_like(7)?;
        letter(8)?;
        if !MONTH_LETTERS.contains(&bytes[8]) {
            return Err(CodiceFiscaleError::Month(bytes[8] as char));
        }
        let day = digit_like(9)? * 10 + digit_like(10)?;
        if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
            return Err(CodiceFiscaleError::Day(day));
        }
        letter(11)?;
        for i in 12..15 {
            digit_like(i)?;
        }
        letter(15)?;
        let expected = Self::check_character(&bytes[..15]);
        if bytes[15] != expected {
            return Err(CodiceFiscaleError::CheckCharacter { found: bytes[15] as char, expected: expected as char });
        }
        Ok(CodiceFiscale(code))
    }

    /// The check character of the first 15 characters (uppercase ASCII letters and digits).
    pub fn check_character(first15: &[u8]) -> u8 {
        let mut sum = 0u32;
        for (index, b) in first15.iter().enumerate() {
            let (digit, letter) = if b.is_ascii_digit() {
                (Some(usize::from(b - b'0')), None)
            } else {
                (None, Some(usize::from(b.wrapping_sub(b'A') % 26)))
            };
            // Positions are counted from 1: index 0 is the first, an odd position.
            sum += if index % 2 == 0 {
                match (digit, letter) {
                    (Some(d), _) => ODD_DIGITS[d],
                    (_, Some(l)) => ODD_LETTERS[l],
                    _ => 0,
                }
            } else {
                match (digit, letter) {
                    (Some(d), _) => d as u32,
                    (_, Some(l)) => l as u32,
                    _ => 0,
                }
            };
        }
        b'A' + (sum % 26) as u8
    }

    /// The omocodia variant number `level` (1..=7): the `level` rightmost
    /// digits replaced by letters, with a new check character.
    pub fn omocodia_variant(&self, level: usize) -> Option<CodiceFiscale> {
        const DIGIT_POSITIONS: [usize; 7] = [14, 13, 12, 10, 9, 7, 6];
        if level == 0 || level > DIGIT_POSITIONS.len() {
            return None;
        }
        let mut bytes = self.0.as_bytes()[..15].to_vec();
        for &position in &DIGIT_POSITIONS[..level] {
            let b = bytes[position];
            if b.is_ascii_digit() {
                bytes[position] = OMOCODIA_LETTERS[usize::from(b - b'0')];
            }
        }
        let check = Self::check_character(&bytes);
        bytes.push(check);
        CodiceFiscale::parse(std::str::from_utf8(&bytes).ok()?).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CodiceFiscale {
    type Error = CodiceFiscaleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CodiceFiscale::parse(&value)
    }
}

impl From<CodiceFiscale> for String {
    fn from(value: CodiceFiscale) -> Self {
        value.0
    }
}

impl fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodiceFiscale({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the {what} is {length} characters long: at most {max} allowed")]
    TooLong { what: &'static str, length: usize, max: usize },
    #[error("the {what} is {length} characters long: at least {min} needed")]
    TooShort { what: &'static str, length: usize, min: usize },
    #[error("the {what} must begin with a letter")]
    FirstNotALetter { what: &'static str },
    #[error("the {what} contains {found:?}, which is not allowed there")]
    BadCharacter { what: &'static str, found: char },
}

fn check_text(text: &str, what: &'static str, max: usize, allowed: impl Fn(char) -> bool) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Empty { what });
    }
    let length = text.chars().count();
    if length > max {
        return Err(TextError::TooLong { what, length, max });
    }
    if let Some(found) = text.chars().find(|c| !allowed(*c)) {
        return Err(TextError::BadCharacter { what, found });
    }
    Ok(text.nfc().collect())
}

/// A person's surname or given name: letters (any script, accents included),
/// spaces, apostrophes, hyphens and dots; 1 to 60 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    pub const CHARS_MAX: usize = 60;

    pub fn parse(text: &str) -> Result<PersonName, TextError> {
        Self::parse_as(text, "name")
    }

    pub fn parse_as(text: &str, what: &'static str) -> Result<PersonName, TextError> {
        check_text(text, what, Self::CHARS_MAX, |c| {
            c.is_alphabetic() || is_combining_mark(c) || matches!(c, ' ' | '\'' | '’' | '-' | '.')
        })
        .map(PersonName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonName {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PersonName::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> Self {
        value.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A short free text (a note, a reason, a school or class name, a device
/// name): printable, 1 to [`Label::CHARS_MAX`] characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

impl Label {
    pub const CHARS_MAX: usize = 200;

    pub fn parse(text: &str) -> Result<Label, TextError> {
        Self::parse_as(text, "text")
    }

    pub fn parse_as(text: &str, what: &'static str) -> Result<Label, TextError> {
        check_text(text, what, Self::CHARS_MAX, |c| !c.is_control()).map(Label)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Label {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Label::parse(&value)
    }
}

impl From<Label> for String {
    fn from(value: Label) -> Self {
        value.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A service (wallet category) identifier: the service's name folded to
/// lowercase ASCII letters, digits and hyphens ("Pre-scuola" → `pre-scuola`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId(String);

impl ServiceId {
    pub const CHARS_MAX: usize = 32;

    /// Derives the id from a service's display name.
    pub fn from_name(name: &str) -> Result<ServiceId, TextError> {
        let mut slug = String::new();
        for c in name.trim().nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if (c.is_whitespace() || c == '-' || c == '_' || c == '\'')
                && !slug.ends_with('-')
                && !slug.is_empty()
            {
                slug.push('-');
            } else if !(c.is_whitespace() || c == '-' || c == '_' || c == '\'') {
                return Err(TextError::BadCharacter { what: "service name", found: c });
            }
        }
        let slug = slug.trim_end_matches('-').to_owned();
        Self::parse(&slug)
    }

    pub fn parse(text: &str) -> Result<ServiceId, TextError> {
        let what = "service";
        if text.is_empty() {
            return Err(TextError::Empty { what });
        }
        if text.len() > Self::CHARS_MAX {
            return Err(TextError::TooLong { what, length: text.chars().count(), max: Self::CHARS_MAX });
        }
        if let Some(found) = text.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return Err(TextError::BadCharacter { what, found });
        }
        Ok(ServiceId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceId {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ServiceId::parse(&value)
    }
}

impl From<ServiceId> for String {
    fn from(value: ServiceId) -> Self {
        value.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({})", self.0)
    }
}

/// Folds a name for search: accents removed, lowercase, only letters and
/// digits kept ("D'Angelo" → `dangelo`, "Nicolò" → `nicolo`).
pub fn fold_for_search(text: &str) -> String {
    text.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).filter(|c| c.is_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_operators_type_them() {
        assert_eq!(Amount::parse("12.50").unwrap().minor(), 1250);
        assert_eq!(Amount::parse("12,5").unwrap().minor(), 1250);
        assert_eq!(Amount::parse(" 7 ").unwrap().minor(), 700);
        assert_eq!(Amount::parse("0.01").unwrap().minor(), 1);
        assert_eq!(Amount::parse("5000").unwrap().minor(), AMOUNT_MINOR_MAX);
        assert_eq!(Amount::parse("12.500"), Err(AmountError::TooPrecise("12.500".into())));
        assert_eq!(Amount::parse("12.50").unwrap().to_string(), "12.50");
    }

    #[test]
    fn bad_amounts_say_what_to_fix() {
        assert_eq!(Amount::parse("12.345"), Err(AmountError::TooPrecise("12.345".into())));
        assert_eq!(Amount::parse("0"), Err(AmountError::Zero));
        assert_eq!(Amount::parse("0.00"), Err(AmountError::Zero));
        assert_eq!(Amount::parse("-5"), Err(AmountError::Negative("-5".into())));
        assert_eq!(Amount::parse("1e3"), Err(AmountError::Exponent("1e3".into())));
        assert_eq!(Amount::parse("5000.01"), Err(AmountError::OverLimit("5000.01".into())));
        assert_eq!(Amount::parse("99999999999999999999"), Err(AmountError::OverLimit("99999999999999999999".into())));
        assert!(matches!(Amount::parse("1.000,00"), Err(AmountError::NotANumber(_))));
        assert!(matches!(Amount::parse("12."), Err(AmountError::NotANumber(_))));
        assert!(matches!(Amount::parse("abc"), Err(AmountError::NotANumber(_))));
        assert_eq!(Amount::parse(""), Err(AmountError::Empty));
        assert!(Amount::parse("12.345").unwrap_err().to_string().contains("two decimals"));
    }

    #[test]
    fn amounts_travel_as_strings_in_json_and_cents_in_binary() {
        let amount = Amount::parse("12.50").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"12.50\"");
        let bytes = postcard::to_stdvec(&amount).unwrap();
        assert_eq!(postcard::from_bytes::<Amount>(&bytes).unwrap(), amount);
        let zero = postcard::to_stdvec(&0i64).unwrap();
        assert!(postcard::from_bytes::<Amount>(&zero).is_err());
    }

    #[test]
    fn pans_check_the_luhn_digit() {
        assert_eq!(Pan::parse("4111 1111 1111 1111").unwrap().as_str(), "4111111111111111");
        assert_eq!(Pan::parse("4111111111111112"), Err(PanError::CheckDigit { expected: 1 }));
        assert_eq!(Pan::parse("1234567"), Err(PanError::Length(7)));
        assert_eq!(Pan::parse("12345678901234567890"), Err(PanError::Length(20)));
        assert_eq!(Pan::parse("4111-1111"), Err(PanError::NotADigit('-')));
        assert_eq!(Pan::parse("  "), Err(PanError::Empty));
        let pan = Pan::with_check_digit("800000000000001").unwrap();
        assert_eq!(Pan::parse(pan.as_str()).unwrap(), pan);
        assert_eq!(pan.masked().len(), 16);
        assert!(pan.masked().starts_with("************"));
    }

    #[test]
    fn codici_fiscali_check_the_control_character_and_accept_omocodia() {
        assert!(CodiceFiscale::parse("MRTMTT25D09F205Z").is_ok());
        let cf = CodiceFiscale::parse("rssmra85t10a562s").unwrap();
        assert_eq!(cf.as_str(), "RSSMRA85T10A562S");
        assert_eq!(
            CodiceFiscale::parse("RSSMRA85T10A562T"),
            Err(CodiceFiscaleError::CheckCharacter { found: 'T', expected: 'S' })
        );
        assert_eq!(CodiceFiscale::parse("RSSMRA85T10A562"), Err(CodiceFiscaleError::Length(15)));
        assert_eq!(CodiceFiscale::parse("RSSMRA85Z10A562S"), Err(CodiceFiscaleError::Month('Z')));
        for level in 1..=7 {
            let variant = cf.omocodia_variant(level).unwrap();
            assert_ne!(variant, cf);
            assert_eq!(CodiceFiscale::parse(variant.as_str()).unwrap(), variant);
        }
        assert_eq!(cf.omocodia_variant(1).unwrap().as_str(), "RSSMRA85T10A56NH");
    }

    #[test]
    fn names_accept_accents_and_apostrophes_and_fold_for_search() {
        let name = PersonName::parse("D'Angelo").unwrap();
        assert_eq!(fold_for_search(name.as_str()), "dangelo");
        assert_eq!(fold_for_search("Nicolò"), "nicolo");
        assert_eq!(fold_for_search("Dell’Acqua"), "dellacqua");
        assert!(PersonName::parse("Rossi3").is_err());
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse(&"a".repeat(61)).is_err());
        assert!(PersonName::parse(&"a".repeat(60)).is_ok());
    }

    #[test]
    fn service_ids_come_from_names() {
        assert_eq!(ServiceId::from_name("Pre-scuola").unwrap().as_str(), "pre-scuola");
        assert_eq!(ServiceId::from_name("Mensa scolastica").unwrap().as_str(), "mensa-scolastica");
        assert_eq!(ServiceId::from_name("Attività").unwrap().as_str(), "attivita");
        assert!(ServiceId::from_name("mensa/bus").is_err());
        assert!(ServiceId::from_name("  ").is_err());
    }

    #[test]
    fn balances_are_signed() {
        assert_eq!(Balance::parse("-50").unwrap().minor(), -5000);
        assert_eq!(Balance::parse("0").unwrap(), Balance::ZERO);
        assert_eq!(Balance::from_minor(-1).unwrap().to_string(), "-0.01");
    }
}
