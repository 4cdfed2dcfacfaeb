//! Bundles: operations carried in a file, for sites with no network at all
//! (a USB stick from a village shop to the town hall).
//!
//! ```text
//! | "SALDO-BUNDLE-1\n" | postcard(BundleBody) | ed25519 signature (64) |
//!   signature over "saldo/bundle/v1\0" ‖ BLAKE3(magic ‖ body), by the exporter
//! ```
//!
//! Every operation inside is signed by its own author and is verified again
//! on import; the bundle's own signature makes the file one unit, so a
//! bundle altered anywhere is refused whole rather than half applied.
//! A *frontier file* says what a node holds, so that another node can
//! export only what it lacks.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::frontier::Frontier;
use crate::ids::{AuthorId, RealmId};
use crate::op::{DeviceKey, SIGNATURE_BYTES};

const BUNDLE_MAGIC: &[u8; 15] = b"SALDO-BUNDLE-1\n";
const FRONTIER_MAGIC: &[u8; 17] = b"SALDO-FRONTIER-1\n";
const BUNDLE_CONTEXT: &[u8; 16] = b"saldo/bundle/v1\0";
/// Largest bundle read (about five million top-ups).
pub const BUNDLE_BYTES_MAX: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBody {
    pub realm: RealmId,
    pub exporter: AuthorId,
    pub created_ms: u64,
    /// Signed operations, in chain order per author, the hub's first.
    pub ops: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("this is not a Saldo bundle (it does not start with the bundle header)")]
    NotABundle,
    #[error("the bundle is damaged: {0}")]
    Malformed(String),
    #[error(
        "the bundle's signature does not match its contents: it was altered or damaged, so none of it was imported"
    )]
    BadSignature,
    #[error("the bundle belongs to another realm ({0:?})")]
    OtherRealm(RealmId),
    #[error("this is not a Saldo frontier file")]
    NotAFrontier,
}

impl BundleBody {
    /// The bundle file's bytes, signed by `key` (the exporter).
    pub fn seal(&self, key: &DeviceKey) -> Vec<u8> {
        assert_eq!(self.exporter, key.author(), "a bundle is signed by its exporter");
        let mut bytes = BUNDLE_MAGIC.to_vec();
        postcard::to_io(self, &mut bytes).expect("writing to a Vec cannot fail");
        let signature = key.sign_message(&signed_message(&bytes));
        bytes.extend_from_slice(&signature);
        bytes
    }

    /// Opens a bundle file of `realm`: the header, the exporter's signature
    /// over everything, then the contents. Operations inside are not checked
    /// here: the node verifies each as it imports it.
    pub fn open(bytes: &[u8], realm: &RealmId) -> Result<BundleBody, BundleError> {
        if !bytes.starts_with(BUNDLE_MAGIC) {
            return Err(BundleError::NotABundle);
        }
        if bytes.len() < BUNDLE_MAGIC.len() + SIGNATURE_BYTES {
            return Err(BundleError::Malformed("it is truncated".into()));
        }
        let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
        let (body, rest): (BundleBody, _) = postcard::take_from_bytes(&signed[BUNDLE_MAGIC.len()..])
            .map_err(|_| BundleError::Malformed("its contents do not decode".into()))?;
        if !rest.is_empty() {
            return Err(BundleError::Malformed(format!("{} unexpected bytes after its contents", rest.len())));
        }
        let key = VerifyingKey::from_bytes(&body.exporter.0).map_err(|_| BundleError::BadSignature)?;
        let signature = Signature::from_slice(signature).map_err(|_| BundleError::BadSignature)?;
        key.verify_strict(&signed_message(signed), &signature).map_err(|_| BundleError::BadSignature)?;
        if body.realm != *realm {
            return Err(BundleError::OtherRealm(body.realm));
        }
        Ok(body)
    }
}

fn signed_message(signed: &[u8]) -> [u8; 48] {
    let mut message = [0u8; 48];
    message[..16].copy_from_slice(BUNDLE_CONTEXT);
    message[16..].copy_from_slice(blake3::hash(signed).as_bytes());
    message
}

/// What a node holds, written to a file so another node can export a bundle
/// of only what it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontierFile {
    pub realm: RealmId,
    /// The node that holds this frontier (what it may receive depends on who it is).
    pub holder: AuthorId,
    pub frontier: Frontier,
}

impl FrontierFile {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = FRONTIER_MAGIC.to_vec();
        postcard::to_io(self, &mut bytes).expect("writing to a Vec cannot fail");
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<FrontierFile, BundleError> {
        let body = bytes.strip_prefix(FRONTIER_MAGIC).ok_or(BundleError::NotAFrontier)?;
        let (file, rest): (FrontierFile, _) = postcard::take_from_bytes(body)
            .map_err(|_| BundleError::Malformed("the frontier file does not decode".into()))?;
        if !rest.is_empty() {
            return Err(BundleError::Malformed("bytes after the frontier".into()));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_bundle_opens_and_any_flipped_bit_refuses_it_whole() {
        let key = DeviceKey::from_secret_bytes(&[7; 32]);
        let realm = RealmId([1; 32]);
        let body = BundleBody { realm, exporter: key.author(), created_ms: 5, ops: vec![vec![1, 2, 3], vec![4; 100]] };
        let sealed = body.seal(&key);
        assert_eq!(BundleBody::open(&sealed, &realm), Ok(body));
        assert_eq!(BundleBody::open(&sealed, &RealmId([2; 32])), Err(BundleError::OtherRealm(realm)));
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x10;
            assert!(BundleBody::open(&tampered, &realm).is_err(), "a flipped bit at {at} went unnoticed");
        }
        assert_eq!(BundleBody::open(b"hello", &realm), Err(BundleError::NotABundle));
    }
}
