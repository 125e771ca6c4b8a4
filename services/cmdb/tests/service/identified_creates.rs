//! A CI created through the API is identified by its class's rules, as an import item of source
//! `api` is: a second "web-01 in production" is refused, naming the first, unless the create asks
//! to merge into it.

use anyhow::{Context as _, ensure};
use desk_proto::cmdb::v1 as pb;
use tonic::Code;

use crate::support::{TestDesk, expect_code, int, new_ci, text};

on_both_backends!(
    a_ci_created_twice_is_refused_naming_the_first_unless_the_create_asks_to_merge,
    concurrent_creates_of_one_new_ci_make_it_once,
);

async fn a_ci_created_twice_is_refused_naming_the_first_unless_the_create_asks_to_merge(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given a server recorded through the API
    let first = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "web-01",
                [("serial_number", text("SN-1")), ("os", text("linux"))],
            ),
        )
        .await?;

    // when it is created again by name and environment, or by serial number under another name
    let by_name = expect_code(
        desk.create_ci(&admin, new_ci("server", "web-01", [])).await,
        Code::AlreadyExists,
    )?;
    let by_serial = expect_code(
        desk.create_ci(
            &admin,
            new_ci("server", "web-one", [("serial_number", text("SN-1"))]),
        )
        .await,
        Code::AlreadyExists,
    )?;

    // then each is refused naming the CI it is and the rule that found it, and nothing is written
    for (refused, rule) in [
        (&by_name, "name_environment"),
        (&by_serial, "serial_number"),
    ] {
        ensure!(
            refused.message().contains(&first.id) && refused.message().contains(rule),
            "the refusal names neither {} nor {rule}: {}",
            first.id,
            refused.message()
        );
    }
    assert_eq!(desk.total(&admin).await?, 1);
    assert_eq!(desk.history(&admin, &first.id).await?.len(), 1);

    // and a server of the same name in another environment is another CI
    let staging = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                environment: pb::Environment::Staging as i32,
                ..new_ci("server", "web-01", [])
            },
        )
        .await?;
    assert_ne!(staging.id, first.id);

    // when the create asks to merge
    let merged = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                merge_if_identified: true,
                location: "DC1".into(),
                ..new_ci(
                    "server",
                    "web-01",
                    [("serial_number", text("SN-1")), ("cpu_count", int(8))],
                )
            },
        )
        .await?;

    // then the first CI is updated by source `api` and returned, and no CI is added
    assert_eq!(merged.id, first.id);
    assert_eq!(merged.version, 2);
    assert_eq!(merged.location, "DC1");
    assert_eq!(merged.attributes.get("cpu_count"), Some(&int(8)));
    assert_eq!(
        merged.attributes.get("os"),
        Some(&text("linux")),
        "what the create does not give stays"
    );
    assert_eq!(
        merged
            .provenance
            .get("cpu_count")
            .map(|p| p.source.as_str()),
        Some("api")
    );
    assert_eq!(desk.total(&admin).await?, 2);
    let history = desk.history(&admin, &first.id).await?;
    let last = history.last().context("a history entry")?;
    assert_eq!(
        (last.action.as_str(), last.note.as_str()),
        ("updated", "source: api")
    );

    // and merging what it already has changes nothing
    let again = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                merge_if_identified: true,
                ..new_ci("server", "web-01", [("cpu_count", int(8))])
            },
        )
        .await?;
    assert_eq!((again.id.as_str(), again.version), (first.id.as_str(), 2));

    // and once the CI is retired, its identity is free for a new one
    desk.retire_ci(&admin, &merged, "replaced").await?;
    let successor = desk
        .create_ci(
            &admin,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;
    assert_ne!(successor.id, first.id);
    Ok(())
}

async fn concurrent_creates_of_one_new_ci_make_it_once(desk: TestDesk) -> anyhow::Result<()> {
    let admin = desk.admin();
    // when four clients create the same new server at once, without an idempotency key
    let attempts =
        (0..4).map(|_| desk.create_ci(&admin, new_ci("server", "db-01", [("cpu_count", int(4))])));
    let results = futures::future::join_all(attempts).await;

    // then one creates it and the others are told it exists
    let created: Vec<&pb::ConfigurationItem> = results.iter().flatten().collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for result in &results {
        if let Err(status) = result {
            ensure!(
                status.code() == Code::AlreadyExists && status.message().contains(&created[0].id),
                "an attempt failed otherwise: {status:?}"
            );
        }
    }
    assert_eq!(desk.total(&admin).await?, 1);
    Ok(())
}
