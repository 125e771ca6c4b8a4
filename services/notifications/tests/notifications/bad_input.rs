//! Bad input is refused with every field violation, and nothing is written.

use desk_proto::notifications::v1 as pb;
use desk_testkit::{
    service::{TENANT, expect_violations, with_token},
    sqlite_database,
};

use super::support::{Options, start};

#[tokio::test]
async fn templates_with_unknown_variables_bad_syntax_or_unknown_locales_are_refused()
-> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    let admin = desk.admin();
    let result = desk
        .client()
        .put_template(with_token(
            pb::PutTemplateRequest {
                template: Some(pb::Template {
                    event_type: "desk.tickets.ticket.created.v1".into(),
                    channel: pb::NotificationChannel::Email as i32,
                    locale: "not a locale!".into(),
                    subject: "{{ ticket.number }} {{ ticket.colour }}".into(),
                    text_body: "{% if %}".into(),
                    html_body: "<p>{{ secret_sauce }}</p>".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await;
    expect_violations(
        result,
        &[
            "template.locale",
            "template.subject",
            "template.text_body",
            "template.html_body",
        ],
    )?;
    assert_eq!(desk.service.rows_in("notifications_templates").await?, 0);

    // A good one is stored and previews in its locale.
    desk.client()
        .put_template(with_token(
            pb::PutTemplateRequest {
                template: Some(pb::Template {
                    event_type: "desk.tickets.ticket.created.v1".into(),
                    channel: pb::NotificationChannel::Email as i32,
                    locale: "sv".into(),
                    subject: "Nytt: {{ ticket.number }}".into(),
                    text_body: "Hej {{ recipient.name }}".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await?;
    let preview = desk
        .client()
        .preview_template(with_token(
            pb::PreviewTemplateRequest {
                event_type: "desk.tickets.ticket.created.v1".into(),
                channel: pb::NotificationChannel::Email as i32,
                locale: "sv-FI".into(),
            },
            &admin,
        ))
        .await?
        .into_inner();
    assert_eq!(preview.locale, "sv");
    assert_eq!(preview.subject, "Nytt: INC-000123");
    Ok(())
}

#[tokio::test]
async fn preferences_with_unknown_zones_bad_times_or_bad_addresses_are_refused()
-> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    let token = desk.service.token("anna", TENANT, &["requester"]);
    let result = desk
        .client()
        .set_preferences(with_token(
            pb::SetPreferencesRequest {
                preferences: Some(pb::Preferences {
                    quiet_hours: Some(pb::QuietHours {
                        start: "25:00".into(),
                        end: "07:00".into(),
                        time_zone: "Mars/Olympus_Mons".into(),
                    }),
                    locale: "xx-invalid-!".into(),
                    email: "anna@".into(),
                    digest_time: "8am".into(),
                    channels: vec![pb::ChannelPreference {
                        kind: "*".into(),
                        channels: vec![pb::NotificationChannel::Webhook as i32],
                    }],
                    ..Default::default()
                }),
            },
            &token,
        ))
        .await;
    expect_violations(
        result,
        &[
            "preferences.quiet_hours.start",
            "preferences.quiet_hours.time_zone",
            "preferences.locale",
            "preferences.email",
            "preferences.digest_time",
            "preferences.channels[0].channels[0]",
        ],
    )?;
    assert_eq!(desk.service.rows_in("notifications_preferences").await?, 0);
    Ok(())
}

#[tokio::test]
async fn rules_without_types_recipients_or_channels_are_refused() -> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    let result = desk
        .client()
        .create_rule(with_token(
            pb::CreateRuleRequest {
                rule: Some(pb::Rule {
                    name: " ".into(),
                    event_types: vec!["tickets created".into()],
                    channels: vec![pb::NotificationChannel::Webhook as i32],
                    ..Default::default()
                }),
            },
            &desk.admin(),
        ))
        .await;
    expect_violations(
        result,
        &[
            "rule.name",
            "rule.event_types[0]",
            "rule.channels[0]",
            "rule.recipients",
        ],
    )?;
    assert_eq!(desk.service.rows_in("notifications_rules").await?, 0);
    // Requesters do not configure notifications.
    let requester = desk.service.token("anna", TENANT, &["requester"]);
    let denied = desk
        .client()
        .list_rules(with_token(pb::ListRulesRequest {}, &requester))
        .await;
    desk_testkit::service::expect_code(denied, tonic::Code::PermissionDenied)?;
    Ok(())
}
