//! A title that shows as nothing is no title: creates and updates refuse it as they refuse a
//! blank one, on `title`, and write nothing.

use desk_proto::tickets::v1 as pb;
use tonic::Code;

use crate::support::{TestDesk, expect_code, expect_violations, incident, with_token};

on_both_backends!(
    a_title_of_only_zero_width_characters_is_refused_on_create_and_nothing_is_written,
    an_update_to_a_title_of_only_invisible_characters_is_refused_and_changes_nothing,
);

async fn a_title_of_only_zero_width_characters_is_refused_on_create_and_nothing_is_written(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let alice = desk.requester("alice");
    for invisible in [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}",
        "\u{2060}\u{FEFF}",
        " \u{200B} \u{200E} ",
        "\u{E0020}\u{E007F}",
    ] {
        // when a requester creates a ticket whose title shows as nothing
        let refused = desk.create(&alice, incident(invisible)).await;

        // then it is INVALID_ARGUMENT with a violation on the title, and on nothing else
        let violated = expect_violations(refused, &["title"])?;
        assert_eq!(violated, ["title"], "{invisible:?}");
    }

    // and nothing was written
    assert_eq!(desk.rows_in("tickets").await?, 0);
    assert_eq!(desk.rows_in("tickets_outbox").await?, 0);

    // and a title with invisible characters among visible ones is still a title
    let joined = desk.create(&alice, incident("VPN\u{200B}drops")).await?;
    assert_eq!(joined.title, "VPN\u{200B}drops");
    Ok(())
}

async fn an_update_to_a_title_of_only_invisible_characters_is_refused_and_changes_nothing(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given a ticket
    let agent = desk.agent();
    let ticket = desk
        .create(&agent, incident("Printer jams on tray 2"))
        .await?;

    // when its title is changed to zero-width spaces and joiners
    let update = pb::UpdateTicketRequest {
        id: ticket.id.clone(),
        expected_version: ticket.version,
        title: Some("\u{200B}\u{200D}\u{FEFF}".into()),
        ..Default::default()
    };
    let refused = desk.api().update_ticket(with_token(update, &agent)).await;

    // then the update is refused on the title
    let status = expect_code(refused, Code::InvalidArgument)?;
    assert!(
        status.message().contains("visible characters"),
        "{}",
        status.message()
    );

    // and the ticket is as it was
    let current = desk.get(&agent, &ticket.id).await?;
    assert_eq!(
        (current.title.as_str(), current.version),
        ("Printer jams on tray 2", ticket.version)
    );
    Ok(())
}
