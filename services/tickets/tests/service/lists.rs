//! Lists: cursor paging newest first, the text and status filters, and a forged page token.

use std::collections::HashSet;

use anyhow::ensure;
use desk_proto::tickets::v1::{self as pb, TicketStatus};

use crate::support::{TestDesk, expect_violations, incident};

on_both_backends!(lists_filter_and_page_with_cursors_newest_first,);

async fn lists_filter_and_page_with_cursors_newest_first(desk: TestDesk) -> anyhow::Result<()> {
    let agent = desk.agent();
    // given seven tickets, two of them about the VPN and two assigned
    let titles = [
        "Printer offline",
        "VPN keeps dropping",
        "Outlook crashes",
        "vpn certificate expired",
        "Disk full",
        "Badge reader",
        "Monitor flickers",
    ];
    let mut created = Vec::new();
    for title in titles {
        created.push(desk.create(&agent, incident(title)).await?);
    }
    for index in [1, 4] {
        created[index] = desk.assign(&agent, &created[index], "team-net", "").await?;
    }

    // when the agent pages through them three at a time
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = desk
            .list(
                &agent,
                pb::ListTicketsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(page.total_size, 7, "every page reports the total");
        pages.push(
            page.tickets
                .iter()
                .map(|t| t.number.clone())
                .collect::<Vec<_>>(),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        ensure!(pages.len() < 10, "paging does not end");
    }

    // then the pages hold 3, 3 and 1 tickets, newest first, without duplicates
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let numbers: Vec<String> = pages.concat();
    let expected: Vec<String> = (1..=7).rev().map(|n| format!("INC-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // and the text filter matches titles case-insensitively, and takes % literally
    let search = |text: &str| pb::ListTicketsRequest {
        text: text.into(),
        ..Default::default()
    };
    let vpn = desk.list(&agent, search("vPn")).await?;
    let mut found: Vec<&str> = vpn.tickets.iter().map(|t| t.title.as_str()).collect();
    found.sort_unstable();
    assert_eq!(found, ["VPN keeps dropping", "vpn certificate expired"]);
    assert_eq!(vpn.total_size, 2);
    assert_eq!(
        desk.list(&agent, search("%")).await?.total_size,
        0,
        "% is not a wildcard"
    );

    // and the status filter
    let by_status = |statuses: Vec<TicketStatus>| pb::ListTicketsRequest {
        statuses: statuses.into_iter().map(|s| s as i32).collect(),
        ..Default::default()
    };
    let assigned = desk
        .list(&agent, by_status(vec![TicketStatus::Assigned]))
        .await?;
    assert_eq!(assigned.total_size, 2);
    let assigned_ids: HashSet<&str> = assigned.tickets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        assigned_ids,
        HashSet::from([created[1].id.as_str(), created[4].id.as_str()])
    );
    assert_eq!(
        desk.list(&agent, by_status(vec![TicketStatus::New]))
            .await?
            .total_size,
        5
    );
    assert_eq!(
        desk.list(
            &agent,
            by_status(vec![TicketStatus::New, TicketStatus::Assigned])
        )
        .await?
        .total_size,
        7
    );

    // and a page token that no list produced is INVALID_ARGUMENT
    let forged = pb::ListTicketsRequest {
        page_token: "garbage!!".into(),
        ..Default::default()
    };
    expect_violations(desk.list(&agent, forged).await, &["page_token"])?;
    Ok(())
}
