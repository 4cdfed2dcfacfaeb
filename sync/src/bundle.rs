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
//! export only what it lacks; it is signed by its holder (see [`FrontierFile`]).

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::frontier::Frontier;
use crate::ids::{AuthorId, RealmId};
use crate::op::{DeviceKey, SIGNATURE_BYTES};

const BUNDLE_MAGIC: &[u8; 15] = b"SALDO-BUNDLE-1\n";
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
    #[error(
        "this is not a Saldo frontier file: write one with `saldo bundle frontier` on the node that will import the bundle"
    )]
    NotAFrontier,
    #[error(
        "this frontier file is of the old, unsigned format (version 1), which is no longer trusted: write a new one with `saldo bundle frontier` on the node that will import the bundle"
    )]
    UnsignedFrontier,
    #[error(
        "this frontier file is of format version {0}; this saldo reads version {FRONTIER_FORMAT_VERSION}: write it again with the same saldo version as the exporting node"
    )]
    FrontierVersion(u8),
    #[error(
        "the frontier file's signature does not match its contents: it was altered or damaged; write a new one with `saldo bundle frontier` on the node that will import the bundle"
    )]
    FrontierBadSignature,
    #[error(
        "the frontier file belongs to another realm ({0:?}): write one with `saldo bundle frontier` on a node of this realm"
    )]
    FrontierOtherRealm(RealmId),
    #[error("the frontier file is {0} bytes, over the limit of {FRONTIER_FILE_BYTES_MAX}")]
    FrontierTooLarge(usize),
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
/// of only what it lacks. Signed by its holder: the exporter shares by the
/// holder's enrolled role, so the holder must be who the file says.
///
/// ```text
/// | "SALDO-FRONTIER\n" | version (1 byte, 2) | postcard(FrontierFile) | ed25519 signature (64) |
///   signature over "saldo/frontier/2" ‖ BLAKE3(everything before it), by the holder
/// ```
///
/// Version 1 (`"SALDO-FRONTIER-1\n"`, unsigned) is refused with a message
/// that says to write a new file. A file can be copied: whoever holds a
/// device's frontier file gets, in the bundle made for it, what that device
/// may receive anyway (the hub's log and its own), never more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontierFile {
    pub realm: RealmId,
    /// The node that holds this frontier (what it may receive depends on who it is).
    pub holder: AuthorId,
    /// When the holder wrote it (its clock), shown to the exporter.
    pub created_ms: u64,
    pub frontier: Frontier,
}

/// The frontier file's format version (its byte after the header).
pub const FRONTIER_FORMAT_VERSION: u8 = 2;
/// Largest frontier file read: no larger than the largest sync message,
/// which carries the same frontier.
pub const FRONTIER_FILE_BYTES_MAX: usize = crate::reconcile::MESSAGE_BYTES_MAX;
const FRONTIER_MAGIC_V1: &[u8; 17] = b"SALDO-FRONTIER-1\n";
const FRONTIER_MAGIC: &[u8; 15] = b"SALDO-FRONTIER\n";
const FRONTIER_CONTEXT: &[u8; 16] = b"saldo/frontier/2";

impl FrontierFile {
    /// The file's bytes, signed by `key` (the holder).
    pub fn seal(&self, key: &DeviceKey) -> Vec<u8> {
        assert_eq!(self.holder, key.author(), "a frontier file is signed by its holder");
        let mut bytes = FRONTIER_MAGIC.to_vec();
        bytes.push(FRONTIER_FORMAT_VERSION);
        postcard::to_io(self, &mut bytes).expect("writing to a Vec cannot fail");
        let signature = key.sign_message(&frontier_signed_message(&bytes));
        bytes.extend_from_slice(&signature);
        bytes
    }

    /// Opens a frontier file of `realm` from untrusted bytes: bounded, never
    /// panics; the holder's signature over everything is checked. Whether
    /// the holder is enrolled in the realm is for the exporting node to say.
    pub fn open(bytes: &[u8], realm: &RealmId) -> Result<FrontierFile, BundleError> {
        if bytes.starts_with(FRONTIER_MAGIC_V1) {
            return Err(BundleError::UnsignedFrontier);
        }
        let rest = bytes.strip_prefix(FRONTIER_MAGIC).ok_or(BundleError::NotAFrontier)?;
        if bytes.len() > FRONTIER_FILE_BYTES_MAX {
            return Err(BundleError::FrontierTooLarge(bytes.len()));
        }
        match rest.first() {
            Some(&FRONTIER_FORMAT_VERSION) => {}
            Some(&other) => return Err(BundleError::FrontierVersion(other)),
            None => return Err(BundleError::Malformed("the frontier file is truncated".into())),
        }
        if rest.len() < 1 + SIGNATURE_BYTES {
            return Err(BundleError::Malformed("the frontier file is truncated".into()));
        }
        let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
        let (file, after): (FrontierFile, _) = postcard::take_from_bytes(&signed[FRONTIER_MAGIC.len() + 1..])
            .map_err(|_| BundleError::Malformed("the frontier file does not decode".into()))?;
        if !after.is_empty() {
            return Err(BundleError::Malformed(format!("{} unexpected bytes after the frontier", after.len())));
        }
        let key = VerifyingKey::from_bytes(&file.holder.0).map_err(|_| BundleError::FrontierBadSignature)?;
        let signature = Signature::from_slice(signature).map_err(|_| BundleError::FrontierBadSignature)?;
        key.verify_strict(&frontier_signed_message(signed), &signature)
            .map_err(|_| BundleError::FrontierBadSignature)?;
        if file.realm != *realm {
            return Err(BundleError::FrontierOtherRealm(file.realm));
        }
        Ok(file)
    }
}

fn frontier_signed_message(signed: &[u8]) -> [u8; 48] {
    let mut message = [0u8; 48];
    message[..16].copy_from_slice(FRONTIER_CONTEXT);
    message[16..].copy_from_slice(blake3::hash(signed).as_bytes());
    message
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

    fn frontier_file(key: &DeviceKey, realm: RealmId) -> FrontierFile {
        use crate::frontier::FrontierEntry;
        use crate::ids::{OpId, Seq};
        let entry = FrontierEntry { seq: Seq(4), head: OpId([9; 32]) };
        let frontier = Frontier([(AuthorId([3; 32]), entry), (key.author(), entry)].into_iter().collect());
        FrontierFile { realm, holder: key.author(), created_ms: 1_790_000_000_000, frontier }
    }

    #[test]
    fn a_frontier_file_opens_only_as_its_holder_signed_it() {
        let key = DeviceKey::from_secret_bytes(&[7; 32]);
        let realm = RealmId([1; 32]);
        let file = frontier_file(&key, realm);
        let sealed = file.seal(&key);
        assert_eq!(FrontierFile::open(&sealed, &realm), Ok(file.clone()));
        assert_eq!(FrontierFile::open(&sealed, &RealmId([2; 32])), Err(BundleError::FrontierOtherRealm(realm)));
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x10;
            assert!(FrontierFile::open(&tampered, &realm).is_err(), "a flipped bit at {at} went unnoticed");
        }
        // Naming another holder (the hub) breaks the signature.
        let at = sealed.windows(32).position(|w| w == key.author().0).expect("the holder is in the file");
        let mut edited = sealed.clone();
        edited[at..at + 32].copy_from_slice(&realm.0);
        assert_eq!(FrontierFile::open(&edited, &realm), Err(BundleError::FrontierBadSignature));
    }

    #[test]
    fn an_old_unsigned_frontier_file_is_refused_with_what_to_do() {
        let key = DeviceKey::from_secret_bytes(&[7; 32]);
        let realm = RealmId([1; 32]);
        let file = frontier_file(&key, realm);
        let mut old = FRONTIER_MAGIC_V1.to_vec();
        postcard::to_io(&(file.realm, file.holder, &file.frontier), &mut old).unwrap();
        let refused = FrontierFile::open(&old, &realm).unwrap_err();
        assert_eq!(refused, BundleError::UnsignedFrontier);
        assert!(refused.to_string().contains("saldo bundle frontier"), "{refused}");
        let mut newer = file.seal(&key);
        newer[FRONTIER_MAGIC.len()] = 3;
        assert_eq!(FrontierFile::open(&newer, &realm), Err(BundleError::FrontierVersion(3)));
    }

    #[test]
    fn any_prefix_or_garbage_as_a_frontier_file_is_refused_without_panicking() {
        let key = DeviceKey::from_secret_bytes(&[7; 32]);
        let realm = RealmId([1; 32]);
        let sealed = frontier_file(&key, realm).seal(&key);
        for end in 0..sealed.len() {
            assert!(FrontierFile::open(&sealed[..end], &realm).is_err(), "a file cut at {end} was accepted");
        }
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for length in 0..600 {
            let mut bytes = FRONTIER_MAGIC.to_vec();
            bytes.push(FRONTIER_FORMAT_VERSION);
            for _ in 0..length {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                bytes.push(rng as u8);
            }
            assert!(FrontierFile::open(&bytes, &realm).is_err());
        }
        let mut huge = FRONTIER_MAGIC.to_vec();
        huge.resize(FRONTIER_FILE_BYTES_MAX + 1, 0);
        assert_eq!(FrontierFile::open(&huge, &realm), Err(BundleError::FrontierTooLarge(FRONTIER_FILE_BYTES_MAX + 1)));
    }
}
