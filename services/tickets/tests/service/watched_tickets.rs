//! A requester lists what they may read: the tickets they raised and the tickets they watch.

use std::collections::BTreeSet;

use desk_proto::tickets::v1 as pb;
use desk_tickets::store::migrations::Migrator;
use sea_orm_migration::MigratorTrait as _;

use crate::support::{TestDesk, incident, with_token};

on_both_backends!(
    a_requesters_list_shows_the_tickets_they_watch_until_they_stop_watching,
    tickets_watched_before_the_watcher_index_existed_are_listed_for_their_watchers,
);

/// The numbers of the tickets `token` lists, and the list's total.
async fn listed(
    desk: &TestDesk,
    token: &str,
    request: pb::ListTicketsRequest,
) -> anyhow::Result<(BTreeSet<String>, i64)> {
    let list = desk.list(token, request).await?;
    let numbers = list.tickets.into_iter().map(|t| t.number).collect();
    Ok((numbers, list.total_size))
}

fn numbers(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

async fn a_requesters_list_shows_the_tickets_they_watch_until_they_stop_watching(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let (alice, walter, bob) = (
        desk.requester("alice"),
        desk.requester("walter"),
        desk.requester("bob"),
    );
    // given alice's ticket, which walter watches, walter's own, and bob's, which nobody watches
    let watched = desk
        .create(
            &alice,
            pb::CreateTicketRequest {
                watcher_ids: vec!["walter".into()],
                ..incident("The shared drive is read-only")
            },
        )
        .await?;
    let own = desk
        .create(&walter, incident("My headset crackles"))
        .await?;
    let unwatched = desk
        .create(&bob, incident("Bob's monitor flickers"))
        .await?;

    // when walter lists his tickets
    let (seen, total) = listed(&desk, &walter, pb::ListTicketsRequest::default()).await?;

    // then he sees his own and the one he watches, not bob's
    assert_eq!(seen, numbers(&[&watched.number, &own.number]));
    assert_eq!(total, 2);
    // and he may open every ticket his list shows
    for number in &seen {
        desk.get(&walter, number).await?;
    }
    // and bob's list is still his own alone
    assert_eq!(
        listed(&desk, &bob, pb::ListTicketsRequest::default()).await?,
        (numbers(&[&unwatched.number]), 1)
    );
    // and walter's own filters narrow what he may read: alice's tickets he watches
    let of_alice = pb::ListTicketsRequest {
        requester_id: "alice".into(),
        ..Default::default()
    };
    assert_eq!(
        listed(&desk, &walter, of_alice.clone()).await?,
        (numbers(&[&watched.number]), 1)
    );
    // and a walter of another tenant sees nothing of this one
    let walter_elsewhere = desk.token("walter", "globex", &["requester"]);
    assert_eq!(desk.total(&walter_elsewhere).await?, 0);

    // when an agent takes walter off the ticket
    let agent = desk.agent();
    let removal = pb::UpdateTicketRequest {
        id: watched.id.clone(),
        expected_version: watched.version,
        remove_watcher_ids: vec!["walter".into()],
        ..Default::default()
    };
    let removed = desk
        .api()
        .update_ticket(with_token(removal, &agent))
        .await?
        .into_inner()
        .ticket
        .ok_or_else(|| anyhow::anyhow!("the response carries no ticket"))?;

    // then walter's list forgets it
    assert_eq!(
        listed(&desk, &walter, pb::ListTicketsRequest::default()).await?,
        (numbers(&[&own.number]), 1)
    );

    // and when alice adds him back, it is in his list again
    let addition = pb::UpdateTicketRequest {
        id: watched.id.clone(),
        expected_version: removed.version,
        add_watcher_ids: vec!["walter".into()],
        ..Default::default()
    };
    desk.api()
        .update_ticket(with_token(addition, &alice))
        .await?;
    assert_eq!(listed(&desk, &walter, of_alice).await?.1, 1);
    Ok(())
}

async fn tickets_watched_before_the_watcher_index_existed_are_listed_for_their_watchers(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given a ticket walter watches
    let watched = desk
        .create(
            &desk.requester("alice"),
            pb::CreateTicketRequest {
                watcher_ids: vec!["ana".into(), "walter".into()],
                ..incident("Badge reader at door 3 is dead")
            },
        )
        .await?;

    // when the database is as it was before the watcher index, and is migrated again
    let connection = desk.db.connection();
    Migrator::down(connection, Some(1)).await?;
    assert!(
        desk.rows_in("ticket_watchers").await.is_err(),
        "the index table is gone"
    );
    Migrator::up(connection, None).await?;

    // then the index was filled from the tickets, and walter lists the ticket
    assert_eq!(desk.rows_in("ticket_watchers").await?, 2);
    let (seen, total) = listed(
        &desk,
        &desk.requester("walter"),
        pb::ListTicketsRequest::default(),
    )
    .await?;
    assert_eq!((seen, total), (numbers(&[&watched.number]), 1));
    Ok(())
}
