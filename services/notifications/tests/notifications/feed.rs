//! The in-app feed: a server stream resumable by cursor — after a disconnect nothing is missed
//! and nothing repeated — and read/unread state.

use std::time::Duration;

use desk_proto::notifications::v1 as pb;
use desk_testkit::{
    service::{TENANT, with_token},
    sqlite_database,
};
use futures::StreamExt;

use super::support::{Options, WAIT, start, ticket};

async fn next(
    stream: &mut tonic::Streaming<pb::StreamFeedResponse>,
) -> anyhow::Result<pb::FeedItem> {
    let item = tokio::time::timeout(WAIT, stream.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stream ended"))??;
    item.item.ok_or_else(|| anyhow::anyhow!("no item"))
}

#[tokio::test]
async fn the_feed_stream_resumes_after_a_disconnect_without_gaps_or_repeats() -> anyhow::Result<()>
{
    let desk = start(sqlite_database()?, Options::default()).await?;
    desk.person(
        "anna",
        "Anna Lind",
        "anna@example.se",
        "it-IT",
        "Europe/Rome",
    )
    .await?;
    desk.wait_for_people(2).await?;
    let token = desk.service.token("anna", TENANT, &["requester"]);
    let mut stream = desk
        .client()
        .stream_feed(with_token(pb::StreamFeedRequest { cursor: 0 }, &token))
        .await?
        .into_inner();
    desk.ticket_event("created", &ticket("INC-000090", "anna"), "agent-budi")
        .await?;
    desk.ticket_event("created", &ticket("INC-000091", "anna"), "agent-budi")
        .await?;
    let first = next(&mut stream).await?;
    let second = next(&mut stream).await?;
    assert_eq!((first.sequence, second.sequence), (1, 2));
    assert!(
        first.title.contains("Abbiamo ricevuto la sua richiesta"),
        "{}",
        first.title
    );
    assert!(!first.read);
    drop(stream);

    // While disconnected.
    desk.ticket_event("created", &ticket("INC-000092", "anna"), "agent-budi")
        .await?;
    desk.ticket_event("created", &ticket("INC-000093", "anna"), "agent-budi")
        .await?;
    desk.wait_for_rows("notifications_feed", 4).await?;

    let mut resumed = desk
        .client()
        .stream_feed(with_token(
            pb::StreamFeedRequest {
                cursor: second.sequence,
            },
            &token,
        ))
        .await?
        .into_inner();
    let third = next(&mut resumed).await?;
    let fourth = next(&mut resumed).await?;
    assert_eq!((third.sequence, fourth.sequence), (3, 4));
    assert!(third.title.contains("INC-000092") && fourth.title.contains("INC-000093"));
    // Live again after the backlog.
    desk.ticket_event("created", &ticket("INC-000094", "anna"), "agent-budi")
        .await?;
    let fifth = next(&mut resumed).await?;
    assert_eq!(fifth.sequence, 5);
    assert!(
        tokio::time::timeout(Duration::from_millis(400), resumed.next())
            .await
            .is_err(),
        "nothing repeated"
    );

    // Read state.
    let updated = desk
        .client()
        .mark_read(with_token(
            pb::MarkReadRequest {
                item_ids: vec![first.id.clone(), third.id.clone()],
                read: true,
            },
            &token,
        ))
        .await?
        .into_inner()
        .updated;
    assert_eq!(updated, 2);
    let mut again = desk
        .client()
        .stream_feed(with_token(pb::StreamFeedRequest { cursor: 0 }, &token))
        .await?
        .into_inner();
    let mut read = Vec::new();
    for _ in 0..5 {
        read.push(next(&mut again).await?.read);
    }
    assert_eq!(read, vec![true, false, true, false, false]);
    // Someone else's token sees none of it.
    let other = desk.service.token("bo", TENANT, &["requester"]);
    let mut theirs = desk
        .client()
        .stream_feed(with_token(pb::StreamFeedRequest { cursor: 0 }, &other))
        .await?
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), theirs.next())
            .await
            .is_err()
    );
    Ok(())
}
