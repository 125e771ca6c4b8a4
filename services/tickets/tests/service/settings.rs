//! Per-tenant settings: only admins change the priority matrix, a matrix must be complete and
//! monotonic, and new tickets follow it while existing ones keep their priority.

use std::collections::BTreeSet;

use anyhow::Context as _;
use desk_proto::tickets::v1::{self as pb, Level, Priority};
use tonic::Code;

use crate::support::{TestDesk, expect_code, expect_violations, incident, with_token};

on_both_backends!(only_admins_change_the_priority_matrix_and_new_tickets_follow_it,);

fn matrix(cells: [(Level, Level, Priority); 9]) -> pb::TicketSettings {
    pb::TicketSettings {
        priority_matrix: cells
            .into_iter()
            .map(|(impact, urgency, priority)| pb::PriorityCell {
                impact: impact as i32,
                urgency: urgency as i32,
                priority: priority as i32,
            })
            .collect(),
        reopen_window_hours: 72,
    }
}

fn cells_of(settings: &pb::TicketSettings) -> BTreeSet<(i32, i32, i32)> {
    settings
        .priority_matrix
        .iter()
        .map(|c| (c.impact, c.urgency, c.priority))
        .collect()
}

async fn only_admins_change_the_priority_matrix_and_new_tickets_follow_it(
    desk: TestDesk,
) -> anyhow::Result<()> {
    use Level::{High, Low, Medium};
    use Priority::{
        P1Critical as P1, P2High as P2, P3Moderate as P3, P4Low as P4, P5Planning as P5,
    };
    let (agent, admin) = (desk.agent(), desk.admin());
    let low_low = || pb::CreateTicketRequest {
        impact: Low as i32,
        urgency: Low as i32,
        ..incident("Wallpaper is the wrong shade of blue")
    };

    // given a low × low ticket under the ITIL default: P5
    let before = desk.create(&agent, low_low()).await?;
    assert_eq!(before.priority, P5 as i32);

    // and a tenant's matrix without P5: low × low is P4
    let tuned = matrix([
        (High, High, P1),
        (High, Medium, P2),
        (High, Low, P3),
        (Medium, High, P2),
        (Medium, Medium, P3),
        (Medium, Low, P4),
        (Low, High, P3),
        (Low, Medium, P4),
        (Low, Low, P4),
    ]);

    // when an agent tries to set it, it is PERMISSION_DENIED
    expect_code(
        desk.update_settings(&agent, tuned.clone()).await,
        Code::PermissionDenied,
    )?;
    expect_code(
        desk.update_settings(&desk.requester("alice"), tuned.clone())
            .await,
        Code::PermissionDenied,
    )?;

    // and a matrix where raising urgency lowers priority is INVALID_ARGUMENT
    let non_monotonic = matrix([
        (High, High, P5),
        (High, Medium, P2),
        (High, Low, P3),
        (Medium, High, P2),
        (Medium, Medium, P3),
        (Medium, Low, P4),
        (Low, High, P3),
        (Low, Medium, P4),
        (Low, Low, P5),
    ]);
    expect_violations(
        desk.update_settings(&admin, non_monotonic).await,
        &["settings.priority_matrix"],
    )?;
    let mut incomplete = tuned.clone();
    incomplete.priority_matrix.pop();
    expect_violations(
        desk.update_settings(&admin, incomplete).await,
        &["settings.priority_matrix"],
    )?;

    // and an admin sets it
    let saved = desk.update_settings(&admin, tuned.clone()).await?;
    assert_eq!(cells_of(&saved), cells_of(&tuned));
    let read_back = desk
        .api()
        .get_ticket_settings(with_token(pb::GetTicketSettingsRequest {}, &agent))
        .await?
        .into_inner()
        .settings
        .context("no settings")?;
    assert_eq!(cells_of(&read_back), cells_of(&tuned));
    assert_eq!(read_back.reopen_window_hours, 72);

    // then new tickets use it, and existing ones keep their priority
    let after = desk.create(&agent, low_low()).await?;
    assert_eq!(after.priority, P4 as i32);
    assert_eq!(desk.get(&agent, &before.id).await?.priority, P5 as i32);

    // and another tenant still has the ITIL default
    let globex_agent = desk.token("agent-9", "globex", &["agent"]);
    assert_eq!(
        desk.create(&globex_agent, low_low()).await?.priority,
        P5 as i32
    );
    Ok(())
}
