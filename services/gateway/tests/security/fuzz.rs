//! Fuzzing request decoding and validation: arbitrary bytes (proptest) sent as the request of
//! every public method through the gateway, with an admin's token so each reaches the service's
//! parsing and validation. Every answer must be a proper gRPC status from the service — a
//! panic shows as a reset stream or a missing status (`UNKNOWN`, `UNAVAILABLE`) — and `INTERNAL`
//! only where the bytes are no protobuf message at all (the gRPC-specified code for that). The
//! desk must still answer afterwards. Bounded: a few cases per method, small messages.

use bytes::Bytes;
use proptest::{
    strategy::{Strategy as _, ValueTree as _},
    test_runner::{Config, TestRunner},
};
use tonic::Code;

use crate::{
    desk::{Desk, call, public_methods},
    support::{TENANT, token},
};

/// Cases per method: with ~90 methods, a few seconds in all.
const CASES_PER_METHOD: usize = 12;

// Multi-threaded as in production: the CMDB moves large imports off the runtime (`block_in_place`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bytes_as_any_request_get_a_status_never_a_panic() -> anyhow::Result<()> {
    let desk = Desk::start().await?;
    let methods = public_methods()?;
    let authorization = format!("Bearer {}", token("fuzzer", TENANT, &["admin", "agent"]));
    // Arbitrary bytes, and bytes that start as a valid field (so decoding gets further).
    let strategy = proptest::prop_oneof![
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..64),
        (
            1u8..16,
            proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..48)
        )
            .prop_map(|(field, rest)| {
                let mut bytes = vec![field << 3 | 2, u8::try_from(rest.len()).unwrap_or(0)];
                bytes.extend(rest);
                bytes
            }),
    ];
    let mut runner = TestRunner::new(Config::default());
    let mut failures = Vec::new();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for method in &methods {
        for _ in 0..CASES_PER_METHOD {
            let bytes = strategy
                .new_tree(&mut runner)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .current();
            let answer = call(
                desk.gateway_channel(),
                &method.path(),
                Bytes::from(bytes.clone()),
                Some(&authorization),
            )
            .await?;
            *codes.entry(format!("{:?}", answer.code)).or_default() += 1;
            let proper = match answer.code {
                Code::Unknown | Code::Unavailable | Code::Unauthenticated => false,
                Code::Internal => answer.message.contains("decode"),
                _ => true,
            };
            if !proper {
                failures.push(format!(
                    "{} with {bytes:02x?}: {:?} {}",
                    method.path(),
                    answer.code,
                    answer.message
                ));
            }
        }
    }
    // Still serving: a good request on every service answers.
    for method in methods.iter().filter(|m| m.name.starts_with("List")) {
        let answer = call(
            desk.gateway_channel(),
            &method.path(),
            Bytes::new(),
            Some(&authorization),
        )
        .await?;
        if matches!(answer.code, Code::Unknown | Code::Unavailable) {
            failures.push(format!(
                "{} after fuzzing: {:?}",
                method.path(),
                answer.code
            ));
        }
    }
    println!(
        "fuzz: {} methods x {CASES_PER_METHOD} cases; answers by code: {codes:?}",
        methods.len()
    );
    anyhow::ensure!(
        failures.is_empty(),
        "{} improper answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
