//! Tokens (ARCHITECTURE §7): every kind of bad token is refused with `UNAUTHENTICATED` by every
//! public method, through the gateway and directly at the owning service (never trust the hop),
//! while good tokens — the development secret's and the IdP's current key's — get past
//! authentication on every method (the control that keeps the refusals meaningful).

use base64::Engine as _;
use bytes::Bytes;
use desk_kit::{
    auth::{Claims, dev_claims, mint_dev_token},
    settings::Settings,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;

use crate::{
    desk::{Desk, KIT_TESTDATA, Method, call, public_methods},
    support::{SECRET, TENANT, channel},
};

/// The current IdP key's `kid` (in the services' JWKS), and the one it replaced.
const CURRENT_KID: &str = "test-ed25519-rotated";
const ROTATED_OUT_KID: &str = "test-ed25519";

fn admin_claims() -> Claims {
    dev_claims(
        &Settings::defaults().auth,
        "mallory",
        TENANT,
        &["admin"],
        3600,
    )
}

fn hs256(secret: &[u8], claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )?)
}

fn eddsa(private_pem: &str, kid: &str, claims: &Claims) -> anyhow::Result<String> {
    let pem = std::fs::read(format!("{KIT_TESTDATA}/{private_pem}"))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(&pem)?,
    )?)
}

/// The public key the services trust (`x` of `jwks-rotated.json`), as an attacker would read it.
fn public_key_x() -> anyhow::Result<String> {
    let jwks: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{KIT_TESTDATA}/jwks-rotated.json"
    ))?)?;
    jwks["keys"][0]["x"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the JWKS has an x"))
}

/// Each bad token, by name, as the `authorization` header it is sent with (`None`: none).
fn bad_tokens() -> anyhow::Result<Vec<(&'static str, Option<String>)>> {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let good = mint_dev_token(SECRET, &admin_claims())?;
    let (signed_part, _) = good
        .rsplit_once('.')
        .ok_or_else(|| anyhow::anyhow!("a JWT has three parts"))?;
    let other_signature = mint_dev_token(
        SECRET,
        &dev_claims(&Settings::defaults().auth, "ana", TENANT, &["agent"], 60),
    )?;
    let (_, foreign_signature) = other_signature
        .rsplit_once('.')
        .ok_or_else(|| anyhow::anyhow!("a JWT has three parts"))?;

    let mut expired = admin_claims();
    expired.exp -= 2 * 3600;
    let mut not_yet_valid = admin_claims();
    not_yet_valid.nbf = Some(not_yet_valid.exp - 60);
    let mut wrong_issuer = admin_claims();
    wrong_issuer.iss = "https://evil.example.com".into();
    let mut wrong_audience = admin_claims();
    wrong_audience.aud = "another-api".into();
    let x = public_key_x()?;
    let raw_public_key = engine.decode(&x)?;

    Ok(vec![
        ("missing", None),
        ("empty bearer", Some("Bearer ".into())),
        (
            "not a bearer (basic)",
            Some("Basic bWFsbG9yeTpzZWNyZXQ=".into()),
        ),
        ("malformed", bearer("not.a.jwt".into())),
        ("malformed (two parts)", bearer(signed_part.to_owned())),
        (
            "alg=none",
            bearer(format!(
                "{}.{}.",
                engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
                engine.encode(serde_json::to_vec(&admin_claims())?)
            )),
        ),
        (
            "HS/RS confusion (HS256 with the public key's x)",
            bearer(hs256(x.as_bytes(), &admin_claims())?),
        ),
        (
            "HS/RS confusion (HS256 with the public key's bytes)",
            bearer(hs256(&raw_public_key, &admin_claims())?),
        ),
        (
            "bad signature",
            bearer(format!("{signed_part}.{foreign_signature}")),
        ),
        (
            "bad signature (another secret)",
            bearer(hs256(
                b"another-secret-that-is-also-32-bytes-long",
                &admin_claims(),
            )?),
        ),
        ("expired", bearer(mint_dev_token(SECRET, &expired)?)),
        (
            "not yet valid",
            bearer(mint_dev_token(SECRET, &not_yet_valid)?),
        ),
        (
            "wrong issuer",
            bearer(mint_dev_token(SECRET, &wrong_issuer)?),
        ),
        (
            "wrong audience",
            bearer(mint_dev_token(SECRET, &wrong_audience)?),
        ),
        (
            "unknown kid",
            bearer(eddsa(
                "ed25519-rotated-private.pem",
                "no-such-key",
                &admin_claims(),
            )?),
        ),
        (
            "rotated-out key",
            bearer(eddsa(
                "ed25519-private.pem",
                ROTATED_OUT_KID,
                &admin_claims(),
            )?),
        ),
        (
            "rotated-out key under the current kid",
            bearer(eddsa("ed25519-private.pem", CURRENT_KID, &admin_claims())?),
        ),
    ])
}

fn good_tokens() -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        (
            "development secret",
            format!("Bearer {}", mint_dev_token(SECRET, &admin_claims())?),
        ),
        (
            "IdP's current key",
            format!(
                "Bearer {}",
                eddsa("ed25519-rotated-private.pem", CURRENT_KID, &admin_claims())?
            ),
        ),
    ])
}

/// Where a call goes: the gateway, or the owning service itself.
async fn both_ways(
    desk: &Desk,
    method: &Method,
    authorization: Option<&str>,
) -> anyhow::Result<[(&'static str, Code, String); 2]> {
    let via_gateway = call(
        desk.gateway_channel(),
        &method.path(),
        Bytes::new(),
        authorization,
    )
    .await?;
    let direct = call(
        channel(desk.direct_addr(method)?),
        &method.path(),
        Bytes::new(),
        authorization,
    )
    .await?;
    Ok([
        ("gateway", via_gateway.code, via_gateway.message),
        ("direct", direct.code, direct.message),
    ])
}

// Multi-threaded as in production: the CMDB moves large imports off the runtime (`block_in_place`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_by_every_method_through_the_gateway_and_directly()
-> anyhow::Result<()> {
    let desk = Desk::start().await?;
    let methods = public_methods()?;
    anyhow::ensure!(
        methods.len() > 50,
        "the descriptor set lists the public methods"
    );
    let mut failures = Vec::new();
    let mut table = vec![format!(
        "{:<52} {:>18} {:>18}",
        "token", "via gateway", "direct"
    )];
    for (name, authorization) in bad_tokens()? {
        let mut refused = [0usize; 2];
        for method in &methods {
            for (way, (hop, code, message)) in both_ways(&desk, method, authorization.as_deref())
                .await?
                .into_iter()
                .enumerate()
            {
                if code == Code::Unauthenticated {
                    refused[way] += 1;
                } else {
                    failures.push(format!(
                        "{name}: {} {hop} answered {code:?} ({message})",
                        method.path()
                    ));
                }
            }
        }
        table.push(format!(
            "{name:<52} {:>18} {:>18}",
            format!("{}/{} refused", refused[0], methods.len()),
            format!("{}/{} refused", refused[1], methods.len())
        ));
    }
    for (name, authorization) in good_tokens()? {
        let mut admitted = [0usize; 2];
        for method in &methods {
            for (way, (hop, code, message)) in both_ways(&desk, method, Some(&authorization))
                .await?
                .into_iter()
                .enumerate()
            {
                if code == Code::Unauthenticated {
                    failures.push(format!(
                        "good token ({name}): {} {hop} refused it: {message}",
                        method.path()
                    ));
                } else {
                    admitted[way] += 1;
                }
            }
        }
        table.push(format!(
            "{:<52} {:>18} {:>18}",
            format!("good: {name}"),
            format!("{}/{} admitted", admitted[0], methods.len()),
            format!("{}/{} admitted", admitted[1], methods.len())
        ));
    }
    println!("{}", table.join("\n"));
    anyhow::ensure!(
        failures.is_empty(),
        "{}\n{} token checks failed:\n{}",
        table.join("\n"),
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
