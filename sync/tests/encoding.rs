//! The operation encoding at its boundary: what a peer or a bundle hands us.

use proptest::collection::vec;
use proptest::prelude::*;
use saldo_sync::op::{DIRECTORY_CHANGE_BYTES_MAX, SignedOp};
use saldo_sync::{
    Amount, AuthorId, Balance, Body, ConsumerId, Decision, DeviceKey, DocId, DuePayment, FamilyId, FlagReason, Hlc,
    Label, OfflineLimits, OpId, Operation, OperatorAccount, OperatorLogin, OperatorRole, PaymentMethod, PersonName,
    RealmId, ReceiptNo, ReceiptRange, Refund, Role, Seq, ServiceCharge, ServiceId, TopUp, TopUpLine, Transfer, Verdict,
    WalletBalance, WalletKey,
};

fn label() -> impl Strategy<Value = Label> {
    "[a-zA-Zàèéìòù' 0-9]{1,40}".prop_filter_map("a label", |s| Label::parse(&s).ok())
}

fn amount() -> impl Strategy<Value = Amount> {
    (1i64..=500_000).prop_map(|m| Amount::from_minor(m).unwrap())
}

fn balance() -> impl Strategy<Value = Balance> {
    (0i64..=1_000_000_000).prop_map(|m| Balance::from_minor(m).unwrap())
}

fn service() -> impl Strategy<Value = ServiceId> {
    "[a-z][a-z0-9-]{0,20}".prop_map(|s| ServiceId::parse(&s).unwrap())
}

fn wallet() -> impl Strategy<Value = WalletKey> {
    (any::<[u8; 16]>(), service()).prop_map(|(c, service)| WalletKey { consumer: ConsumerId(c), service })
}

fn method() -> impl Strategy<Value = PaymentMethod> {
    prop_oneof![
        Just(PaymentMethod::Cash),
        Just(PaymentMethod::DebitCard),
        Just(PaymentMethod::CreditCard),
        Just(PaymentMethod::Other)
    ]
}

fn limits() -> impl Strategy<Value = OfflineLimits> {
    (amount(), balance(), any::<u32>()).prop_map(|(per_operation, unconfirmed_total, offline_secs_max)| OfflineLimits {
        per_operation,
        unconfirmed_total,
        offline_secs_max,
    })
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Accepted),
        (label()).prop_map(|detail| Verdict::Flagged { reason: FlagReason::BelowFloor, detail }),
        (label(), label()).prop_map(|(operator, note)| Verdict::ReviewAccepted { operator, note }),
        (label(), label()).prop_map(|(operator, note)| Verdict::ReviewRejected { operator, note }),
    ]
}

fn range() -> impl Strategy<Value = ReceiptRange> {
    (0u64..1_000_000, 0u64..1_000)
        .prop_map(|(first, n)| ReceiptRange { first: ReceiptNo(first), last: ReceiptNo(first + n) })
}

fn body() -> impl Strategy<Value = Body> {
    let author = any::<[u8; 32]>().prop_map(AuthorId);
    let role = prop_oneof![Just(Role::Hub), Just(Role::CashPoint), Just(Role::SchoolDevice), Just(Role::HubContacts)];
    prop_oneof![
        label().prop_map(|realm_name| Body::Genesis { realm_name }),
        (author.clone(), role, label(), limits()).prop_map(|(device, role, name, limits)| Body::Enrol {
            device,
            role,
            name,
            limits
        }),
        (author.clone(), any::<u64>(), label()).prop_map(|(device, s, reason)| Body::Revoke {
            device,
            last_seq_seen: Seq(s),
            reason
        }),
        (author.clone(), limits()).prop_map(|(device, limits)| Body::ChangeLimits { device, limits }),
        (any::<u64>(), vec((wallet(), amount()), 1..=4), method(), proptest::option::of(label())).prop_filter_map(
            "distinct wallets",
            |(receipt, lines, method, operator)| {
                let body = Body::TopUp(TopUp {
                    receipt: ReceiptNo(receipt),
                    lines: lines.into_iter().map(|(wallet, amount)| TopUpLine { wallet, amount }).collect(),
                    method,
                    operator,
                });
                body.check_limits().is_ok().then_some(body)
            }
        ),
        (label(), any::<u64>(), wallet(), amount(), method()).prop_map(|(due, r, wallet, amount, method)| {
            Body::DuePayment(DuePayment { due, receipt: ReceiptNo(r), wallet, amount, method, operator: None })
        }),
        (label(), wallet(), amount()).prop_map(|(reference, wallet, amount)| Body::ServiceCharge(ServiceCharge {
            reference,
            wallet,
            amount
        })),
        (any::<[u8; 32]>(), label()).prop_map(|(t, reason)| Body::Reversal { target: OpId(t), reason }),
        (wallet(), wallet(), amount(), label()).prop_filter_map("two wallets", |(from, to, amount, note)| {
            (from != to).then_some(Body::Transfer(Transfer { from, to, amount, note }))
        }),
        (wallet(), amount(), method(), label()).prop_map(|(wallet, amount, method, note)| Body::Refund(Refund {
            wallet,
            amount,
            method,
            note
        })),
        (range(), balance(), label()).prop_map(|(receipts, amount, reference)| Body::Remittance {
            receipts,
            amount,
            reference
        }),
        (proptest::option::of(range()), any::<u32>(), balance())
            .prop_map(|(receipts, count, total)| Body::DailyClose { day: 20_261_127, receipts, count, total }),
        vec((any::<[u8; 32]>(), any::<[u8; 32]>(), verdict()), 1..=8).prop_map(|v| Body::Decisions(
            v.into_iter().map(|(t, a, verdict)| Decision { target: OpId(t), author: AuthorId(a), verdict }).collect()
        )),
        (any::<[u8; 16]>(), vec(any::<u8>(), 0..512))
            .prop_map(|(f, change)| Body::DirectoryChange { doc: DocId::Family(FamilyId(f)), change }),
        (any::<u64>(), vec((wallet(), balance()), 0..8)).prop_map(|(s, b)| Body::BalanceCheckpoint {
            as_of: Seq(s),
            balances: b.into_iter().map(|(wallet, balance)| WalletBalance { wallet, balance }).collect()
        }),
        (author, wallet(), amount()).prop_map(|(device, wallet, amount)| Body::EscrowGrant { device, wallet, amount }),
        Just(Body::Heartbeat),
        operator(),
    ]
}

fn operator() -> impl Strategy<Value = Body> {
    let role = prop_oneof![Just(OperatorRole::Administrator), Just(OperatorRole::Clerk), Just(OperatorRole::Cashier)];
    (
        "[a-z][a-z0-9._-]{2,31}",
        "[A-Za-z][a-z' ]{0,30}",
        role,
        any::<[u8; 32]>(),
        "[A-Za-z0-9+/]{22}",
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(login, name, role, cash_point, salt, must_change_password, disabled)| {
            Body::Operator(OperatorAccount {
                login: OperatorLogin::parse(&login).unwrap(),
                name: PersonName::parse(&name).unwrap(),
                role,
                cash_point: (role == OperatorRole::Cashier).then_some(AuthorId(cash_point)),
                password_hash: Label::parse(&format!("$argon2id$v=19$m=19456,t=2,p=1${salt}$hash")).unwrap(),
                must_change_password,
                disabled,
            })
        })
}

fn signed_op() -> impl Strategy<Value = (SignedOp, RealmId)> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), 1u64..u64::MAX, any::<[u8; 32]>(), any::<u64>(), any::<u64>(), body())
        .prop_map(|(secret, realm, seq, prev, hlc, hub_seen, body)| {
            let key = DeviceKey::from_secret_bytes(&secret);
            let realm = RealmId(realm);
            let op = Operation {
                author: key.author(),
                seq: Seq(seq),
                prev: OpId(prev),
                hlc: Hlc(hlc),
                hub_seen: Seq(hub_seen),
                body,
            };
            (op.sign(&realm, &key), realm)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every operation decodes to itself, with the same id, and verifies.
    #[test]
    fn operations_round_trip_through_their_encoding((signed, realm) in signed_op()) {
        let bytes = signed.to_bytes();
        let decoded = SignedOp::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &signed);
        prop_assert_eq!(decoded.to_bytes(), bytes.clone());
        prop_assert!(decoded.verify(&realm).is_ok());
        // The peek used for sync bookkeeping agrees with the full decoding.
        prop_assert_eq!(saldo_sync::op::peek(&bytes), Some((signed.op.author, signed.op.seq, signed.id)));
    }

    /// A single flipped bit anywhere in a signed operation is caught: it no
    /// longer decodes, or its signature no longer verifies.
    #[test]
    fn a_flipped_bit_anywhere_is_rejected((signed, realm) in signed_op(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = signed.to_bytes();
        let at = position.index(bytes.len());
        bytes[at] ^= 1 << bit;
        match SignedOp::decode(&bytes) {
            Err(_) => {}
            Ok(tampered) => prop_assert!(tampered.verify(&realm).is_err(), "bit {} of byte {} went unnoticed", bit, at),
        }
    }

    /// Decoding arbitrary bytes never panics.
    #[test]
    fn decoding_garbage_never_panics(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = SignedOp::decode(&bytes);
        let _ = saldo_sync::op::peek(&bytes);
        let _ = saldo_sync::reconcile::Message::decode(&bytes);
    }
}

#[test]
fn a_directory_change_at_the_limit_is_accepted_and_one_byte_more_is_refused() {
    let key = DeviceKey::from_secret_bytes(&[1; 32]);
    let realm = RealmId([2; 32]);
    let op = |n: usize| Operation {
        author: key.author(),
        seq: Seq(1),
        prev: OpId::NONE,
        hlc: Hlc(0),
        hub_seen: Seq(0),
        body: Body::DirectoryChange { doc: DocId::Service(ServiceId::parse("mensa").unwrap()), change: vec![7; n] },
    };
    let at_limit = op(DIRECTORY_CHANGE_BYTES_MAX).sign(&realm, &key);
    assert!(SignedOp::decode(&at_limit.to_bytes()).is_ok());
    let over = op(DIRECTORY_CHANGE_BYTES_MAX + 1).encode();
    let mut bytes = over;
    bytes.extend_from_slice(&[0; 64]);
    assert!(SignedOp::decode(&bytes).is_err());
}

/// An operator's account that a decoder would take is whole: a cashier with
/// a cash point, a hub role without one, an argon2id hash.
#[test]
fn an_operator_account_without_its_cash_point_or_with_another_hash_is_refused() {
    let account = |role, cash_point: Option<AuthorId>, hash: &str| {
        Body::Operator(OperatorAccount {
            login: OperatorLogin::parse("mario.rossi").unwrap(),
            name: PersonName::parse("Mario Rossi").unwrap(),
            role,
            cash_point,
            password_hash: Label::parse(hash).unwrap(),
            must_change_password: false,
            disabled: false,
        })
    };
    let argon2id = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA";
    assert!(account(OperatorRole::Cashier, Some(AuthorId([1; 32])), argon2id).check_limits().is_ok());
    assert!(account(OperatorRole::Clerk, None, argon2id).check_limits().is_ok());
    assert!(account(OperatorRole::Cashier, None, argon2id).check_limits().is_err());
    assert!(account(OperatorRole::Administrator, Some(AuthorId([1; 32])), argon2id).check_limits().is_err());
    assert!(account(OperatorRole::Clerk, None, "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").check_limits().is_err());
    for bad in ["ab", "1mario", ".mario", "mario rossi", "mario@rossi", &"a".repeat(33)] {
        assert!(OperatorLogin::parse(bad).is_err(), "{bad:?} is not a login");
    }
    assert!(OperatorLogin::parse("m.r_1-x").is_ok());
    assert_eq!(OperatorLogin::parse(" Mario.Rossi ").unwrap().as_str(), "mario.rossi", "typed in any case");
}
