//! Changes published as CloudEvents on the CMDB's stream.

use super::*;

on_both_backends!(changes_are_published_as_cloudevents_on_the_cmdb_stream);

async fn changes_are_published_as_cloudevents_on_the_cmdb_stream(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let robot = desk.integrator();

    // given a server created through the API
    let server = desk
        .create_ci(
            &admin,
            new_ci("server", "web-01", [("serial_number", text("SN-1"))]),
        )
        .await?;

    // when its event reaches the stream
    let created_subject = desk.subject("ci", "created");
    assert_eq!(created_subject, "desk.test.cmdb.acme.ci.created");
    let events = desk
        .wait_for_events(&created_subject, 1, EVENTUALLY)
        .await?;

    // then it is one CloudEvent 1.0 in binary mode with the contract's attributes
    ensure!(
        events.len() == 1,
        "expected one ci.created event, got {}",
        events.len()
    );
    let event = &events[0];
    let header = |name: &str| {
        event
            .header(name)
            .with_context(|| format!("no {name} header"))
    };
    assert_eq!(header("ce-specversion")?, "1.0");
    let ce_id = header("ce-id")?;
    assert_eq!(header("Nats-Msg-Id")?, ce_id, "Nats-Msg-Id is the ce-id");
    assert_eq!(
        uuid::Uuid::parse_str(&ce_id)
            .context("ce-id is a UUID")?
            .get_version_num(),
        7
    );
    assert_eq!(header("ce-type")?, "desk.cmdb.ci.created.v1");
    assert_eq!(header("ce-source")?, "/desk/test/cmdb");
    assert_eq!(header("ce-subject")?, server.id);
    assert_eq!(header("ce-tenant")?, TENANT);
    assert_eq!(header("Content-Type")?, "application/protobuf");
    chrono::DateTime::parse_from_rfc3339(&header("ce-time")?).context("ce-time is RFC 3339")?;
    // and its body is the CiCreated carrying the CI as created, by whom, from which source
    let body: pb::CiCreated = event.decode()?;
    assert_eq!(body.ci.as_ref(), Some(&server));
    assert_eq!(body.source, "api");
    assert_eq!(body.actor.map(|a| a.subject), Some("ada".to_owned()));

    // when a relationship is added, and a discovery batch is committed
    let app = desk
        .create_ci(&admin, new_ci("application", "checkout-app", []))
        .await?;
    let relationship = desk
        .relate(&admin, &app.id, Rel::RunsOn, &server.id)
        .await?;
    let staged = desk
        .stage(
            &robot,
            pb::StageImportRequest {
                source: "sccm".into(),
                items: vec![
                    item("new", "server", "web-02", [("serial_number", text("SN-2"))]),
                    item(
                        "old",
                        "server",
                        "web-01",
                        [
                            ("serial_number", text("SN-1")),
                            ("fqdn", text("web-01.corp.example")),
                        ],
                    ),
                ],
                ..Default::default()
            },
        )
        .await?;
    let committed = desk.commit(&robot, &staged.id).await?;
    let updated = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: server.id.clone(),
                expected_version: 2,
                location: Some("DC2".into()),
                ..Default::default()
            },
        )
        .await?;
    let retired = desk.retire_ci(&admin, &updated, "replaced").await?;

    // then each is published once, in order, on its own subject, with its own ce-type
    let events = desk.settled_events().await?;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.subject.clone(), e.header("ce-type").unwrap_or_default()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("ci", "created"),
        ("ci", "created"),
        ("relationship", "added"),
        ("ci", "created"),
        ("ci", "updated"),
        ("import", "committed"),
        ("ci", "updated"),
        ("ci", "retired"),
    ]
    .iter()
    .map(|(aggregate, event)| {
        (
            desk.subject(aggregate, event),
            format!("desk.cmdb.{aggregate}.{event}.v1"),
        )
    })
    .collect();
    assert_eq!(summary, expected);
    let distinct: HashSet<String> = events.iter().filter_map(|e| e.header("ce-id")).collect();
    assert_eq!(
        distinct.len(),
        events.len(),
        "every event has its own ce-id"
    );

    let added = &events[2];
    assert_eq!(added.header("ce-subject"), Some(relationship.id.clone()));
    let body: pb::RelationshipAdded = added.decode()?;
    assert_eq!(body.relationship.as_ref(), Some(&relationship));
    assert_eq!(body.actor.map(|a| a.subject), Some("ada".to_owned()));

    let discovered: pb::CiCreated = events[3].decode()?;
    assert_eq!(
        discovered.source, "sccm",
        "a CI created by an import names the import's source"
    );
    let discovered_ci = discovered.ci.context("CiCreated without a CI")?;
    assert_eq!(discovered_ci.name, "web-02");
    assert_eq!(
        Some(discovered_ci.id.clone()),
        events[3].header("ce-subject")
    );
    let reconciled: pb::CiUpdated = events[4].decode()?;
    assert_eq!(reconciled.source, "sccm");
    assert_eq!(
        reconciled.ci.as_ref().map(|c| (c.id.clone(), c.version)),
        Some((server.id.clone(), 2))
    );
    assert_eq!(
        changes_of(&reconciled.changes),
        BTreeSet::from([(
            "attributes.fqdn".to_owned(),
            None,
            some("web-01.corp.example")
        )])
    );

    let import_event = &events[5];
    assert_eq!(
        import_event.header("ce-subject"),
        Some(committed.id.clone())
    );
    let body: pb::ImportCommitted = import_event.decode()?;
    assert_eq!(
        body.batch.as_ref(),
        Some(&pb::ImportBatch {
            items: Vec::new(),
            relationships: Vec::new(),
            ..committed.clone()
        }),
        "the event carries the batch's summary"
    );
    assert_eq!(body.actor.map(|a| a.subject), Some("sccm-robot".to_owned()));

    let body: pb::CiUpdated = events[6].decode()?;
    assert_eq!(body.ci.as_ref(), Some(&updated));
    assert_eq!(body.source, "api");
    let body: pb::CiRetired = events[7].decode()?;
    assert_eq!(body.ci.as_ref(), Some(&retired));
    assert_eq!(body.reason, "replaced");
    Ok(())
}
