use std::collections::HashSet;

use anyhow::ensure;
use desk_proto::sla::v1::{self as pb, PolicyKind};

use crate::support::*;

on_both_backends!(a_restart_in_the_middle_of_a_burst_loses_no_clock_and_fires_no_timer_twice);

async fn a_restart_in_the_middle_of_a_burst_loses_no_clock_and_fires_no_timer_twice(
    mut desk: TestDesk,
) -> anyhow::Result<()> {
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, ""))
        .await?;
    const TICKETS: u32 = 40;
    // A burst of tickets created a minute apart; the service restarts halfway through, while
    // the first ones' warnings fall due.
    for n in 0..TICKETS / 2 {
        desk.created(&Ticket::new(100 + n, at(i64::from(n))))
            .await?;
    }
    desk.set_clock(at(50))?;
    desk.sla.restart().await?;
    for n in TICKETS / 2..TICKETS {
        desk.created(&Ticket::new(100 + n, at(i64::from(n))))
            .await?;
    }
    // Every first response (1 h, around the clock) falls due; after the restart, at once.
    desk.set_clock(at(200))?;
    let breaches = desk.sla_events("breached", TICKETS as usize).await?;
    // Let the worker poll a few more times: nothing more may fire.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let events = desk.sla.settled_events().await?;
    let breaches_now: Vec<&Event> = events
        .iter()
        .filter(|e| e.subject.ends_with(".breached"))
        .collect();
    ensure!(
        breaches_now.len() == TICKETS as usize,
        "{} breaches for {TICKETS} tickets",
        breaches_now.len()
    );
    let tickets: HashSet<String> = breaches
        .iter()
        .map(|e| {
            e.decode::<pb::SlaBreached>()
                .map(|b| b.transition.unwrap_or_default().ticket_id)
        })
        .collect::<Result<_, _>>()?;
    ensure!(
        tickets.len() == TICKETS as usize,
        "every ticket breached once"
    );
    let started = events
        .iter()
        .filter(|e| e.subject.ends_with(".started"))
        .count();
    ensure!(started == 2 * TICKETS as usize, "{started} clocks started");
    let warnings = events
        .iter()
        .filter(|e| e.subject.ends_with(".warning"))
        .count();
    ensure!(
        warnings == 2 * TICKETS as usize,
        "{warnings} warnings (75 and 90 % once each)"
    );
    ensure!(desk.sla.rows_in("sla_clocks").await? == 2 * i64::from(TICKETS));
    Ok(())
}
