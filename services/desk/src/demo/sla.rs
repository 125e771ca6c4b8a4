//! The demo tenant's service levels, seeded through the public API as an admin before any
//! ticket: one business calendar per demo region with its public holidays (emea on
//! Europe/Stockholm, apac on Asia/Jakarta, amer on America/Sao_Paulo), which the directory's
//! demo teams then name, and an SLA (on the emea calendar, the customer's) plus an OLA (each
//! team's own calendar). Fixed idempotency keys make a second run add nothing.

use std::collections::HashMap;

use desk_proto::{
    sla::v1::{self as pb, sla_service_client::SlaServiceClient},
    tickets::v1 as tickets,
};
use tonic::transport::Channel;

use super::with;

struct DemoCalendar {
    region: &'static str,
    name: &'static str,
    time_zone: &'static str,
    /// Local working hours, Monday to Friday.
    hours: (u32, u32),
    /// Public holidays on fixed dates (month, day, name), every year seeded.
    fixed: &'static [(u32, u32, &'static str)],
    /// Holidays that move (Easter and its kin, lunar and Islamic holidays), by date.
    moving: &'static [(&'static str, &'static str)],
}

const YEARS: [i32; 2] = [2026, 2027];

const CALENDARS: &[DemoCalendar] = &[
    DemoCalendar {
        region: "emea",
        name: "EMEA office hours (Stockholm)",
        time_zone: "Europe/Stockholm",
        hours: (8, 17),
        fixed: &[
            (1, 1, "Nyårsdagen"),
            (1, 6, "Trettondedag jul"),
            (5, 1, "Första maj"),
            (6, 6, "Sveriges nationaldag"),
            (12, 24, "Julafton"),
            (12, 25, "Juldagen"),
            (12, 26, "Annandag jul"),
            (12, 31, "Nyårsafton"),
        ],
        moving: &[
            ("2026-04-03", "Långfredagen"),
            ("2026-04-06", "Annandag påsk"),
            ("2026-05-14", "Kristi himmelsfärds dag"),
            ("2026-06-19", "Midsommarafton"),
            ("2027-03-26", "Långfredagen"),
            ("2027-03-29", "Annandag påsk"),
            ("2027-05-06", "Kristi himmelsfärds dag"),
            ("2027-06-25", "Midsommarafton"),
        ],
    },
    DemoCalendar {
        region: "apac",
        name: "APAC office hours (Jakarta)",
        time_zone: "Asia/Jakarta",
        hours: (9, 18),
        fixed: &[
            (1, 1, "Tahun Baru Masehi"),
            (5, 1, "Hari Buruh"),
            (6, 1, "Hari Lahir Pancasila"),
            (8, 17, "Hari Kemerdekaan"),
            (12, 25, "Hari Raya Natal"),
        ],
        moving: &[
            ("2026-02-17", "Tahun Baru Imlek"),
            ("2026-03-19", "Hari Suci Nyepi"),
            ("2026-03-20", "Idul Fitri"),
            ("2026-03-21", "Idul Fitri"),
            ("2026-04-03", "Wafat Yesus Kristus"),
            ("2026-05-27", "Idul Adha"),
            ("2027-02-06", "Tahun Baru Imlek"),
            ("2027-03-10", "Idul Fitri"),
            ("2027-03-11", "Idul Fitri"),
        ],
    },
    DemoCalendar {
        region: "amer",
        name: "AMER office hours (São Paulo)",
        time_zone: "America/Sao_Paulo",
        hours: (9, 18),
        fixed: &[
            (1, 1, "Confraternização Universal"),
            (4, 21, "Tiradentes"),
            (5, 1, "Dia do Trabalho"),
            (9, 7, "Independência do Brasil"),
            (10, 12, "Nossa Senhora Aparecida"),
            (11, 2, "Finados"),
            (11, 15, "Proclamação da República"),
            (11, 20, "Dia da Consciência Negra"),
            (12, 25, "Natal"),
        ],
        moving: &[
            ("2026-02-16", "Carnaval"),
            ("2026-02-17", "Carnaval"),
            ("2026-04-03", "Sexta-feira Santa"),
            ("2026-06-04", "Corpus Christi"),
            ("2027-02-08", "Carnaval"),
            ("2027-02-09", "Carnaval"),
            ("2027-03-26", "Sexta-feira Santa"),
            ("2027-05-27", "Corpus Christi"),
        ],
    },
];

fn calendar_pb(demo: &DemoCalendar) -> pb::Calendar {
    let weekdays = [
        pb::Weekday::Monday,
        pb::Weekday::Tuesday,
        pb::Weekday::Wednesday,
        pb::Weekday::Thursday,
        pb::Weekday::Friday,
    ];
    let mut holidays: Vec<pb::Holiday> = YEARS
        .iter()
        .flat_map(|year| {
            demo.fixed
                .iter()
                .map(move |(month, day, name)| pb::Holiday {
                    date: format!("{year}-{month:02}-{day:02}"),
                    name: (*name).to_owned(),
                })
        })
        .chain(demo.moving.iter().map(|(date, name)| pb::Holiday {
            date: (*date).to_owned(),
            name: (*name).to_owned(),
        }))
        .collect();
    holidays.sort_by(|a, b| a.date.cmp(&b.date));
    pb::Calendar {
        name: demo.name.into(),
        time_zone: demo.time_zone.into(),
        weekly_hours: weekdays
            .iter()
            .map(|day| pb::WorkingSpan {
                weekday: *day as i32,
                start_minute: demo.hours.0 * 60,
                end_minute: demo.hours.1 * 60,
                ends_next_day: false,
            })
            .collect(),
        holidays,
        ..Default::default()
    }
}

fn target(metric: pb::Metric, priority: tickets::Priority, minutes: i64) -> pb::Target {
    pb::Target {
        metric: metric as i32,
        priority: priority as i32,
        business_minutes: minutes,
    }
}

/// What the SLA seeding made.
pub struct Seeded {
    /// Region → calendar id, for the directory's teams to name.
    pub calendars: HashMap<&'static str, String>,
    pub policies: usize,
}

/// Seeds calendars and policies as `admin`.
pub async fn seed(channel: Channel, admin: &str) -> anyhow::Result<Seeded> {
    let mut client = SlaServiceClient::new(channel);
    let mut calendars = HashMap::new();
    for demo in CALENDARS {
        let calendar = client
            .create_calendar(with(
                pb::CreateCalendarRequest {
                    calendar: Some(calendar_pb(demo)),
                    idempotency_key: format!("demo-calendar-{}", demo.region),
                },
                admin,
            )?)
            .await?
            .into_inner()
            .calendar
            .unwrap_or_default();
        calendars.insert(demo.region, calendar.id);
    }
    use pb::Metric::{FirstResponse, Resolution};
    use tickets::Priority::{P1Critical, P2High, Unspecified};
    let conditions = Some(pb::ClockConditions {
        pause_pending_reasons: vec![tickets::PendingReason::Customer as i32],
        pause_statuses: vec![],
        reset_on_reopen: false,
    });
    let policies = [
        (
            "demo-policy-sla",
            pb::Policy {
                name: "Standard SLA".into(),
                kind: pb::PolicyKind::Sla as i32,
                targets: vec![
                    target(FirstResponse, P1Critical, 15),
                    target(FirstResponse, Unspecified, 60),
                    target(Resolution, P1Critical, 4 * 60),
                    target(Resolution, P2High, 8 * 60),
                    target(Resolution, Unspecified, 3 * 8 * 60),
                ],
                conditions: conditions.clone(),
                warning_thresholds_percent: vec![75, 90],
                calendar_id: calendars.get("emea").cloned().unwrap_or_default(),
                ..Default::default()
            },
        ),
        (
            "demo-policy-ola",
            pb::Policy {
                name: "Team OLA".into(),
                kind: pb::PolicyKind::Ola as i32,
                targets: vec![
                    target(FirstResponse, Unspecified, 30),
                    target(Resolution, P1Critical, 3 * 60),
                    target(Resolution, Unspecified, 2 * 8 * 60),
                ],
                conditions,
                warning_thresholds_percent: vec![80],
                // Teams that name no calendar count on emea's.
                calendar_id: calendars.get("emea").cloned().unwrap_or_default(),
                ..Default::default()
            },
        ),
    ];
    for (key, policy) in &policies {
        client
            .create_policy(with(
                pb::CreatePolicyRequest {
                    policy: Some(policy.clone()),
                    idempotency_key: (*key).to_owned(),
                },
                admin,
            )?)
            .await?;
    }
    Ok(Seeded {
        calendars,
        policies: policies.len(),
    })
}
