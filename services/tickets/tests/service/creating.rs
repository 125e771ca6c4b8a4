//! Creating tickets: numbers per type, the priority the ITIL matrix derives, a ticket read back
//! exactly as its create returned it, the `ticket.created` CloudEvent, bad input refused with every
//! field violation and nothing written, idempotent creates (retried, and fired at once).

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context as _, ensure};
use desk_proto::tickets::v1::{self as pb, Level, Priority, TicketStatus};
use tonic::{Code, Status};

use super::events_on;
use crate::support::{
    EVENTUALLY, TENANT, TestDesk, expect_code, expect_violations, incident, service_request,
};

on_both_backends!(
    creating_tickets_numbers_them_per_type_and_derives_their_priority,
    a_created_ticket_reads_back_exactly_as_its_create_returned_it,
    a_created_ticket_is_published_as_a_cloudevent,
    bad_input_is_refused_with_every_field_violation_and_nothing_is_written,
    an_idempotent_retry_returns_the_first_ticket_and_creates_only_one,
    concurrent_retries_with_one_idempotency_key_create_only_one_ticket,
);

async fn creating_tickets_numbers_them_per_type_and_derives_their_priority(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given an agent
    let agent = desk.agent();

    // when they log a high-impact, high-urgency incident
    let first = desk
        .create(
            &agent,
            pb::CreateTicketRequest {
                impact: Level::High as i32,
                urgency: Level::High as i32,
                ..incident("Mail is down for everyone")
            },
        )
        .await?;

    // then it is the tenant's first incident, P1 by the ITIL matrix, new, at version 1
    assert_eq!(first.number, "INC-000001");
    assert_eq!(
        first.priority,
        Priority::P1Critical as i32,
        "high × high is P1"
    );
    assert_eq!(first.status, TicketStatus::New as i32);
    assert_eq!(first.version, 1);
    assert_eq!(first.r#type, pb::TicketType::Incident as i32);
    assert_eq!(first.title, "Mail is down for everyone");
    assert_eq!(
        (first.tenant_id.as_str(), first.region.as_str()),
        (TENANT, "test")
    );
    assert!(
        first.id.starts_with("test-"),
        "ids carry their region: {}",
        first.id
    );
    assert_eq!(
        first.requester_id, "agent-7",
        "an empty requester means the caller"
    );

    // and numbers count per type: the next incident is 2, the first service request is REQ-000001
    let second = desk
        .create(&agent, incident("Printer jams on tray 2"))
        .await?;
    assert_eq!(second.number, "INC-000002");
    assert_eq!(
        second.priority,
        Priority::P3Moderate as i32,
        "medium × medium (the default) is P3"
    );
    let request = desk
        .create(&agent, service_request("A laptop for the new hire"))
        .await?;
    assert_eq!(request.number, "REQ-000001");
    assert_eq!(request.r#type, pb::TicketType::ServiceRequest as i32);

    // and a ticket is found by its id and by its number alike
    assert_eq!(desk.get(&agent, &first.id).await?.id, first.id);
    assert_eq!(desk.get(&agent, "INC-000001").await?.id, first.id);
    assert_eq!(desk.get(&agent, "REQ-000001").await?.id, request.id);
    Ok(())
}

async fn a_created_ticket_reads_back_exactly_as_its_create_returned_it(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Regression (PostgreSQL): before the fix this failed — CreateTicket answers (and publishes in ticket.created) the
    // in-memory ticket whose timestamps have nanoseconds, while PostgreSQL keeps microseconds, so
    // GetTicket and an idempotent retry return another `create_time`/`update_time` than the create
    // did (services/tickets/src/api/mod.rs, `TicketApi::now`).
    let agent = desk.agent();
    // given a ticket as CreateTicket returned it
    let created = desk
        .create(
            &agent,
            pb::CreateTicketRequest {
                idempotency_key: "read-back-1".into(),
                ..incident("Coffee machine shows E42")
            },
        )
        .await?;

    // when it is read back, and when the create is retried
    let read_back = desk.get(&agent, &created.id).await?;
    let retried = desk
        .create(
            &agent,
            pb::CreateTicketRequest {
                idempotency_key: "read-back-1".into(),
                ..incident("Coffee machine shows E42")
            },
        )
        .await?;

    // then all three are the same ticket, field for field (timestamps included)
    assert_eq!(
        read_back, created,
        "GetTicket differs from what CreateTicket returned"
    );
    assert_eq!(
        retried, created,
        "a retried create must return the first result"
    );
    Ok(())
}

async fn a_created_ticket_is_published_as_a_cloudevent(desk: TestDesk) -> anyhow::Result<()> {
    // given a ticket created by an agent
    let ticket = desk
        .create(&desk.agent(), incident("VPN drops every hour"))
        .await?;

    // when its event reaches the stream
    let subject = desk.subject("ticket", "created");
    let events = desk.wait_for_events(&subject, 1, EVENTUALLY).await?;

    // then it is one CloudEvent 1.0 in binary mode with the contract's attributes
    ensure!(
        events.len() == 1,
        "expected one ticket.created event, got {}",
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
    assert_eq!(
        header("Nats-Msg-Id")?,
        ce_id,
        "Nats-Msg-Id is the ce-id, so JetStream drops re-sends"
    );
    let ce_uuid = uuid::Uuid::parse_str(&ce_id).context("ce-id is a UUID")?;
    assert_eq!(ce_uuid.get_version_num(), 7, "ce-id is a UUIDv7");
    assert_eq!(header("ce-type")?, "desk.tickets.ticket.created.v1");
    assert_eq!(header("ce-source")?, "/desk/test/tickets");
    assert_eq!(header("ce-subject")?, ticket.id);
    assert_eq!(header("ce-tenant")?, TENANT);
    assert_eq!(header("Content-Type")?, "application/protobuf");
    chrono::DateTime::parse_from_rfc3339(&header("ce-time")?).context("ce-time is RFC 3339")?;

    // and its body is the TicketCreated named by ce-type, carrying the ticket at version 1
    let body: pb::TicketCreated = event.decode()?;
    let published = body.ticket.context("TicketCreated without a ticket")?;
    assert_eq!(published.id, ticket.id);
    assert_eq!(published.number, ticket.number);
    assert_eq!(published.version, 1);
    assert_eq!(body.actor.map(|a| a.subject), Some("agent-7".to_owned()));
    Ok(())
}

async fn bad_input_is_refused_with_every_field_violation_and_nothing_is_written(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();

    // when a create is wrong in four ways at once
    let too_many_watchers: Vec<String> = (0..51).map(|i| format!("watcher-{i}")).collect();
    let everything_wrong = pb::CreateTicketRequest {
        r#type: pb::TicketType::Unspecified as i32,
        title: "   ".into(),
        category: "net\u{7}work".into(),
        watcher_ids: too_many_watchers,
        ..Default::default()
    };
    let violated = expect_violations(
        desk.create(&agent, everything_wrong).await,
        &["type", "title", "category", "watcher_ids"],
    )?;

    // then every one of them is reported, and nothing else
    let violated: BTreeSet<&str> = violated.iter().map(String::as_str).collect();
    assert_eq!(
        violated,
        BTreeSet::from(["type", "title", "category", "watcher_ids"])
    );

    // and control characters in single- and multi-line text, and unknown enum values, are violations too
    let hidden_characters = pb::CreateTicketRequest {
        description: "first line\nsecond\u{0}line".into(),
        impact: 42,
        ..incident("Bell\u{7} rings")
    };
    expect_violations(
        desk.create(&agent, hidden_characters).await,
        &["title", "description", "impact"],
    )?;
    let bad_ids = pb::CreateTicketRequest {
        watcher_ids: vec!["ana".into(), "ana".into(), "has space".into()],
        ..incident("Duplicated watchers")
    };
    expect_violations(
        desk.create(&agent, bad_ids).await,
        &["watcher_ids", "watcher_ids[2]"],
    )?;

    // and a message over the size limit is refused by the limit, and the desk goes on answering
    let oversized = pb::CreateTicketRequest {
        description: "x".repeat(5 * 1024 * 1024),
        ..incident("A very long story")
    };
    let refused = desk.create(&agent, oversized).await;
    let status = match refused {
        Ok(ticket) => anyhow::bail!("a 5 MiB request was accepted: {}", ticket.number),
        Err(status) => status,
    };
    ensure!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "an oversized request answers {:?}: {}",
        status.code(),
        status.message()
    );
    assert_eq!(desk.total(&agent).await?, 0, "the desk still answers");

    // and nothing was written: no ticket, no outbox row, no event
    assert_eq!(desk.total(&agent).await?, 0);
    assert_eq!(desk.rows_in("tickets").await?, 0);
    assert_eq!(
        desk.rows_in("tickets_outbox").await?,
        0,
        "an outbox row would be published sooner or later"
    );
    // and once the relay has published a valid create made after them, that create's event is
    // the stream's only one (the relay publishes in outbox order, so it would come after any
    // event the refused requests had staged)
    let valid = desk
        .create(&agent, incident("A valid create after them"))
        .await?;
    let events = desk.settled_events().await?;
    let published: Vec<String> = events
        .iter()
        .map(|event| {
            let body: pb::TicketCreated = event.decode()?;
            Ok(body.ticket.context("TicketCreated without a ticket")?.id)
        })
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(published, [valid.id]);
    Ok(())
}

async fn an_idempotent_retry_returns_the_first_ticket_and_creates_only_one(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    let request = pb::CreateTicketRequest {
        idempotency_key: "create-7f3a9c".into(),
        ..incident("Badge reader at door 3 is dead")
    };

    // given a create
    let first = desk.create(&agent, request.clone()).await?;

    // when the client retries it with the same key and body
    let retried = desk.create(&agent, request.clone()).await?;

    // then it gets the first ticket back and only one ticket and one event exist
    assert_eq!(
        (
            retried.id.as_str(),
            retried.number.as_str(),
            retried.version
        ),
        (first.id.as_str(), first.number.as_str(), first.version)
    );
    assert_eq!(retried.title, first.title);
    assert_eq!(desk.total(&agent).await?, 1);
    let events = desk.settled_events().await?;
    assert_eq!(
        events_on(&events, &desk.subject("ticket", "created")).len(),
        1
    );

    // and the same key with another body is refused, still without a second ticket
    let other_body = pb::CreateTicketRequest {
        title: "Badge reader at door 4 is dead".into(),
        ..request
    };
    expect_code(desk.create(&agent, other_body).await, Code::AlreadyExists)?;
    assert_eq!(desk.total(&agent).await?, 1);
    Ok(())
}

async fn concurrent_retries_with_one_idempotency_key_create_only_one_ticket(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    // The tenant's numbering exists already: concurrent *first* creates race on PostgreSQL's number
    // sequence, which `the_first_tickets_of_a_tenant_can_be_created_concurrently` covers.
    let earlier = desk.create(&agent, incident("An earlier ticket")).await?;
    let request = pb::CreateTicketRequest {
        idempotency_key: "double-click-42".into(),
        ..incident("Projector in room 12 is blank")
    };

    // when a client fires the same create six times at once (a nervous double click, retries on timeout)
    let attempts = (0..6).map(|_| desk.create(&agent, request.clone()));
    let results = futures::future::join_all(attempts).await;

    // then every attempt answers with the same ticket, and one ticket and one event exist
    // (On PostgreSQL this also covers the first create of a tenant racing to create its number sequence.)
    let tickets: Vec<pb::Ticket> = results
        .into_iter()
        .collect::<Result<_, Status>>()
        .map_err(|s| anyhow::anyhow!("an attempt failed: {s:?}"))?;
    let ids: HashSet<&str> = tickets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "attempts answered with different tickets: {ids:?}"
    );
    assert!(!ids.contains(earlier.id.as_str()));
    assert_eq!(desk.total(&agent).await?, 2);
    let events = desk.settled_events().await?;
    assert_eq!(
        events_on(&events, &desk.subject("ticket", "created")).len(),
        2
    );
    Ok(())
}
