//! Identifiers. Each is a newtype: a bare `u64` or byte array never crosses a
//! module boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        // Hex in JSON (what people and the web UI read and type), the raw
        // bytes in the binary encodings, exactly as before.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    $name::from_hex(&text).map_err(serde::de::Error::custom)
                } else {
                    <[u8; $len]>::deserialize(deserializer).map($name)
                }
            }
        }

        impl $name {
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first eight hex digits, for humans.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                let bytes = hex::decode(text.trim()).map_err(|_| IdError::NotHex { what: stringify!($name) })?;
                let array: [u8; $len] = bytes
                    .try_into()
                    .map_err(|_| IdError::Length { what: stringify!($name), expected: $len * 2 })?;
                Ok($name(array))
            }

            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the {what} is not hexadecimal")]
    NotHex { what: &'static str },
    #[error("the {what} must be {expected} hex digits")]
    Length { what: &'static str, expected: usize },
}

byte_id!(
    /// A device's identity: its ed25519 public key. Every operation names its author.
    AuthorId,
    32
);
byte_id!(
    /// An operation's id: the BLAKE3 hash of its canonical encoding.
    OpId,
    32
);
byte_id!(
    /// A realm (Ente): the hub's public key, the authority of the realm.
    RealmId,
    32
);
byte_id!(
    /// A consumer (child), derived from their codice fiscale so re-imports agree.
    ConsumerId,
    16
);
byte_id!(
    /// A family account, derived from the payer's codice fiscale.
    FamilyId,
    16
);

impl OpId {
    /// The `prev` of the first operation of a log.
    pub const NONE: OpId = OpId([0; 32]);
}

impl RealmId {
    pub fn hub(&self) -> AuthorId {
        AuthorId(self.0)
    }
}

/// Position of an operation in its author's log, starting at 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Debug, Default)]
pub struct Seq(pub u64);

impl Seq {
    pub const FIRST: Seq = Seq(1);

    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A cash point's receipt number: a numbered sequence per cash point, as an
/// *agente contabile* must keep.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Debug)]
pub struct ReceiptNo(pub u64);

impl fmt::Display for ReceiptNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An inclusive range of receipt numbers (closed by a daily close or remittance).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
pub struct ReceiptRange {
    pub first: ReceiptNo,
    pub last: ReceiptNo,
}

impl ReceiptRange {
    pub fn contains(&self, receipt: ReceiptNo) -> bool {
        self.first <= receipt && receipt <= self.last
    }
}

impl ConsumerId {
    pub fn derive(fiscal_code: &crate::CodiceFiscale) -> ConsumerId {
        ConsumerId(derive16("saldo consumer id v1", fiscal_code.as_str()))
    }
}

impl FamilyId {
    pub fn derive(payer_fiscal_code: &crate::CodiceFiscale) -> FamilyId {
        FamilyId(derive16("saldo family id v1", payer_fiscal_code.as_str()))
    }
}

fn derive16(context: &str, input: &str) -> [u8; 16] {
    let hash = blake3::derive_key(context, input.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_in_json_and_raw_bytes_in_postcard() {
        let id = ConsumerId([0xab; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<ConsumerId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ConsumerId>("\"abcd\"").is_err());
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes, vec![0xab; 16]);
        assert_eq!(postcard::from_bytes::<ConsumerId>(&bytes).unwrap(), id);
    }
}
