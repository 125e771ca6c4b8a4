//! E-mail: localized, threaded per ticket, held by quiet hours, sent once per event.

use chrono::{Duration, TimeZone, Utc};
use desk_proto::{notifications::v1 as pb, tickets::v1 as tickets};
use desk_testkit::{
    every_database, postgres::postgres_database, service::with_token, sqlite_database,
};
use uuid::Uuid;

use super::support::{Options, WAIT, start, ticket};

#[tokio::test]
async fn a_ticket_event_sends_a_localized_email_threaded_with_the_previous_one()
-> anyhow::Result<()> {
    for database in every_database().await? {
        let desk = start(database, Options::default()).await?;
        desk.person(
            "anna",
            "Anna Lind",
            "anna@example.se",
            "sv-SE",
            "Europe/Stockholm",
        )
        .await?;
        desk.person("chen", "陈静", "chen@example.cn", "zh-CN", "Asia/Shanghai")
            .await?;
        desk.wait_for_people(4).await?;

        let mut t = ticket("INC-000042", "anna");
        desk.ticket_event("created", &t, "agent-budi").await?;
        let first = desk.sink.wait_for(1, WAIT).await;
        assert_eq!(first.len(), 1, "one e-mail for the new ticket");
        t.status = tickets::TicketStatus::Pending as i32;
        t.pending_reason = tickets::PendingReason::Customer as i32;
        t.version = 2;
        desk.ticket_event("status_changed", &t, "agent-budi")
            .await?;
        let mails = desk.sink.wait_for(2, WAIT).await;
        assert_eq!(mails.len(), 2);

        let (created, waiting) = (&mails[0], &mails[1]);
        assert_eq!(created.to, vec!["anna@example.se"]);
        let subject = created.header("subject").unwrap_or_default();
        assert!(
            subject.contains("Vi har tagit emot ditt ärende"),
            "{subject}"
        );
        assert!(
            created.text().contains("Hej Anna Lind!"),
            "{}",
            created.text()
        );
        assert!(created.html().contains("<p>"), "multipart with HTML");
        let waiting_text = waiting.text();
        assert!(waiting_text.contains("Väntar"), "{waiting_text}");
        assert!(
            waiting_text.contains("Svara gärna på det här mejlet"),
            "{waiting_text}"
        );

        // Threaded: both reply to the ticket's root, each with its own id.
        let root = format!("<ticket.{}@desk.example>", t.id);
        assert_eq!(created.header("references").as_deref(), Some(root.as_str()));
        assert_eq!(
            waiting.header("in-reply-to").as_deref(),
            Some(root.as_str())
        );
        assert_eq!(waiting.header("references").as_deref(), Some(root.as_str()));
        assert_ne!(created.header("message-id"), waiting.header("message-id"));
        assert!(
            created
                .header("message-id")
                .unwrap_or_default()
                .ends_with("@desk.example>")
        );

        // Another requester, another language.
        desk.ticket_event("created", &ticket("INC-000043", "chen"), "agent-budi")
            .await?;
        let mails = desk.sink.wait_for(3, WAIT).await;
        let chinese = &mails[2];
        assert_eq!(chinese.to, vec!["chen@example.cn"]);
        assert!(
            chinese
                .header("subject")
                .unwrap_or_default()
                .contains("我们已收到您的请求")
        );
        assert!(chinese.text().contains("陈静，您好"), "{}", chinese.text());
    }
    Ok(())
}

#[tokio::test]
async fn a_redelivered_event_sends_nothing_twice() -> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    desk.person(
        "anna",
        "Anna Lind",
        "anna@example.se",
        "sv-SE",
        "Europe/Stockholm",
    )
    .await?;
    desk.wait_for_people(2).await?;
    let t = ticket("INC-000050", "anna");
    let payload = tickets::TicketCreated {
        ticket: Some(t),
        actor: None,
    };
    let id = Uuid::now_v7();
    // The same event twice, as a redelivery after a lost ack would bring it.
    desk.publish_as("tickets", "ticket", "created", id, id, "t", &payload)
        .await?;
    desk.publish_as(
        "tickets",
        "ticket",
        "created",
        id,
        Uuid::now_v7(),
        "t",
        &payload,
    )
    .await?;
    // A later event proves the consumer is past both copies.
    desk.person("bo", "Bo", "bo@example.se", "sv", "Europe/Stockholm")
        .await?;
    desk.publish(
        "tickets",
        "ticket",
        "created",
        "t",
        &tickets::TicketCreated {
            ticket: Some(ticket("INC-000051", "bo")),
            actor: None,
        },
    )
    .await?;
    let mails = desk.sink.wait_for(2, WAIT).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails_after = desk.sink.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails_after.len(), 2, "the redelivered event sent nothing");
    let to_anna = mails_after
        .iter()
        .filter(|m| m.to == vec!["anna@example.se"])
        .count();
    assert_eq!(to_anna, 1);
    Ok(())
}

#[tokio::test]
async fn quiet_hours_hold_a_notification_until_they_end() -> anyhow::Result<()> {
    // 23:30 in Stockholm (UTC+1 in January).
    let night = Utc
        .with_ymd_and_hms(2026, 1, 10, 22, 30, 0)
        .single()
        .expect("valid");
    let desk = start(
        postgres_database().await?,
        Options {
            clock: Some(night),
            ..Options::default()
        },
    )
    .await?;
    desk.person(
        "anna",
        "Anna Lind",
        "anna@example.se",
        "sv-SE",
        "Europe/Stockholm",
    )
    .await?;
    desk.wait_for_people(2).await?;
    let token = desk
        .service
        .token("anna", desk_testkit::service::TENANT, &["requester"]);
    desk.client()
        .set_preferences(with_token(
            pb::SetPreferencesRequest {
                preferences: Some(pb::Preferences {
                    quiet_hours: Some(pb::QuietHours {
                        start: "22:00".into(),
                        end: "07:00".into(),
                        time_zone: String::new(),
                    }),
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await?;

    desk.ticket_event("created", &ticket("INC-000060", "anna"), "agent-budi")
        .await?;
    desk.wait_for_rows("notifications_deliveries", 2).await?; // the e-mail and the in-app item
    let held = desk
        .sink
        .wait_for(1, std::time::Duration::from_millis(700))
        .await;
    assert!(held.is_empty(), "held during quiet hours");
    let log = desk
        .client()
        .list_deliveries(with_token(
            pb::ListDeliveriesRequest {
                person_id: "anna".into(),
                ..Default::default()
            },
            &token,
        ))
        .await?
        .into_inner();
    let email = log
        .deliveries
        .iter()
        .find(|d| d.channel == pb::NotificationChannel::Email as i32)
        .expect("an e-mail delivery");
    assert_eq!(email.status, pb::DeliveryStatus::Held as i32);
    // 07:00 Stockholm is 06:00 UTC.
    assert_eq!(
        email.next_attempt_time.as_ref().map(|t| t.seconds),
        Some(
            Utc.with_ymd_and_hms(2026, 1, 11, 6, 0, 0)
                .single()
                .expect("valid")
                .timestamp()
        )
    );

    let clock = desk.service.clock().expect("a manual clock");
    clock.advance(Duration::hours(7)); // 06:30 local: still quiet
    let still = desk
        .sink
        .wait_for(1, std::time::Duration::from_millis(500))
        .await;
    assert!(still.is_empty(), "still quiet at 06:30");
    clock.advance(Duration::minutes(31)); // 07:01 local
    let released = desk.sink.wait_for(1, WAIT).await;
    assert_eq!(released.len(), 1, "sent once quiet hours ended");
    assert!(
        released[0]
            .header("subject")
            .unwrap_or_default()
            .contains("INC-000060")
    );
    Ok(())
}
