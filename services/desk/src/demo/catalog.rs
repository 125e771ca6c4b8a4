//! The demo catalog, through `desk.catalog.v1.CatalogService` as a catalog admin: a new laptop
//! (manager, then finance above 1500), a software licence (manager), access to an application
//! (its owner), a password reset (pre-approved, automated) and a new-starter bundle (parallel
//! tasks), named in the demo's languages. A second run finds them and adds nothing.

use desk_proto::catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient};
use tonic::transport::Channel;

use super::with;

/// The demo's languages: its people's locales.
fn names(texts: [&str; 6]) -> Vec<pb::LocalizedText> {
    ["en", "sv", "it", "id", "zh", "es"]
        .iter()
        .zip(texts)
        .map(|(locale, text)| pb::LocalizedText {
            locale: (*locale).into(),
            text: text.into(),
        })
        .collect()
}

fn field(key: &str, label: &str, kind: pb::FieldType, required: bool) -> pb::FormField {
    pb::FormField {
        key: key.into(),
        label: vec![pb::LocalizedText {
            locale: "en".into(),
            text: label.into(),
        }],
        r#type: kind as i32,
        required,
        ..Default::default()
    }
}

fn choice(key: &str, label: &str, choices: &[&str]) -> pb::FormField {
    pb::FormField {
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        ..field(key, label, pb::FieldType::Choice, true)
    }
}

fn manager() -> pb::ApprovalStep {
    pb::ApprovalStep {
        name: "manager".into(),
        approvers: Some(pb::Approvers {
            kind: pb::ApproverKind::Manager as i32,
            ..Default::default()
        }),
        rule: pb::ApprovalRule::Any as i32,
        remind_after_minutes: 24 * 60,
        expire_after_minutes: 3 * 24 * 60,
        escalate_to: Some(people(&["ada"])),
        ..Default::default()
    }
}

fn people(subjects: &[&str]) -> pb::Approvers {
    pb::Approvers {
        kind: pb::ApproverKind::People as i32,
        group_id: String::new(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn task(key: &str, name: &str, group: &str) -> pb::TaskTemplate {
    pb::TaskTemplate {
        key: key.into(),
        name: name.into(),
        group_id: group.into(),
        automated: false,
        automation: String::new(),
    }
}

fn robot(key: &str, name: &str, automation: &str) -> pb::TaskTemplate {
    pb::TaskTemplate {
        key: key.into(),
        name: name.into(),
        group_id: String::new(),
        automated: true,
        automation: automation.into(),
    }
}

fn plan(stages: Vec<Vec<pb::TaskTemplate>>) -> Option<pb::FulfillmentPlan> {
    Some(pb::FulfillmentPlan {
        stages: stages
            .into_iter()
            .map(|tasks| pb::FulfillmentStage { tasks })
            .collect(),
    })
}

fn offering(
    name: [&str; 6],
    category: &str,
    fields: Vec<pb::FormField>,
    steps: Vec<pb::ApprovalStep>,
    stages: Vec<Vec<pb::TaskTemplate>>,
    target_minutes: i32,
) -> pb::OfferingDefinition {
    pb::OfferingDefinition {
        name: names(name),
        description: Vec::new(),
        service: "IT services".into(),
        category: category.into(),
        form: Some(pb::FormSchema { fields }),
        approval: Some(pb::ApprovalPolicy { steps }),
        fulfillment: plan(stages),
        target_fulfillment_minutes: target_minutes,
        visibility: None,
        knowledge_article_ids: Vec::new(),
        active: true,
    }
}

fn definitions() -> Vec<pb::OfferingDefinition> {
    let mut cost = field("cost", "Estimated cost (EUR)", pb::FieldType::Number, false);
    cost.min = Some(0.0);
    cost.max = Some(10000.0);
    cost.default_value = Some(pb::Value {
        kind: Some(pb::value::Kind::Number(1200.0)),
    });
    let mut why = field(
        "justification",
        "Why the pro model?",
        pb::FieldType::Text,
        true,
    );
    why.visible_when = Some(pb::Condition {
        field: "model".into(),
        test: Some(pb::condition::Test::AnyOf(pb::Texts {
            values: vec!["pro".into()],
        })),
    });
    let finance = pb::ApprovalStep {
        name: "finance".into(),
        approvers: Some(people(&["carl"])),
        rule: pb::ApprovalRule::Any as i32,
        when: Some(pb::Condition {
            field: "cost".into(),
            test: Some(pb::condition::Test::GreaterThan(1500.0)),
        }),
        ..Default::default()
    };
    let mut owner = manager();
    owner.name = "application owner".into();
    owner.approvers = Some(people(&["ada"]));
    owner.escalate_to = None;
    owner.expire_after_minutes = 0;
    vec![
        offering(
            [
                "New laptop",
                "Ny bärbar dator",
                "Nuovo portatile",
                "Laptop baru",
                "新笔记本电脑",
                "Portátil nuevo",
            ],
            "hardware",
            vec![
                choice("model", "Model", &["standard", "pro"]),
                why,
                cost,
                field("delivery", "Needed by", pb::FieldType::Date, false),
            ],
            vec![manager(), finance],
            vec![
                vec![task("order", "Order the laptop", "service-desk")],
                vec![
                    task("image", "Install the standard image", "service-desk"),
                    robot("enrol", "Enrol in device management", "mdm_enrol"),
                ],
            ],
            5 * 24 * 60,
        ),
        offering(
            [
                "Software licence",
                "Programvarulicens",
                "Licenza software",
                "Lisensi perangkat lunak",
                "软件许可证",
                "Licencia de software",
            ],
            "software",
            vec![choice(
                "product",
                "Product",
                &["Office", "Visio", "Adobe Acrobat", "JetBrains"],
            )],
            vec![manager()],
            vec![vec![robot(
                "assign",
                "Assign the licence",
                "licence_assign",
            )]],
            24 * 60,
        ),
        offering(
            [
                "Access to an application",
                "Åtkomst till en applikation",
                "Accesso a un'applicazione",
                "Akses ke aplikasi",
                "应用程序访问权限",
                "Acceso a una aplicación",
            ],
            "access",
            vec![
                choice("application", "Application", &["CRM", "ERP", "Payroll"]),
                field("reason", "Why do you need it?", pb::FieldType::Text, true),
            ],
            vec![owner],
            vec![vec![robot(
                "grant",
                "Add to the application's group",
                "ad_group_add",
            )]],
            8 * 60,
        ),
        offering(
            [
                "Password reset",
                "Återställ lösenord",
                "Reimpostazione password",
                "Atur ulang kata sandi",
                "重置密码",
                "Restablecer contraseña",
            ],
            "access",
            vec![choice("account", "Account", &["windows", "vpn", "email"])],
            Vec::new(),
            vec![vec![robot(
                "reset",
                "Reset and send a one-time password",
                "password_reset",
            )]],
            30,
        ),
        offering(
            [
                "New starter bundle",
                "Paket för nyanställd",
                "Pacchetto nuovo assunto",
                "Paket karyawan baru",
                "新员工套餐",
                "Paquete de nueva incorporación",
            ],
            "onboarding",
            vec![
                field("starter", "New starter's name", pb::FieldType::Text, true),
                field("start_date", "First day", pb::FieldType::Date, true),
                field("manager", "Their manager", pb::FieldType::Person, true),
            ],
            vec![manager()],
            vec![vec![
                robot("account", "Create the account", "ad_account"),
                robot("mailbox", "Create the mailbox", "mailbox"),
                task("laptop", "Prepare a laptop", "service-desk"),
                task("badge", "Print the badge", "facilities"),
            ]],
            3 * 24 * 60,
        ),
    ]
}

/// Creates the demo offerings unless the catalog has some already; returns how many it holds.
pub async fn seed(channel: Channel, admin: &str) -> anyhow::Result<usize> {
    let mut client = CatalogServiceClient::new(channel);
    let existing = client
        .list_offerings(with(pb::ListOfferingsRequest::default(), admin)?)
        .await?
        .into_inner()
        .offerings;
    if !existing.is_empty() {
        return Ok(existing.len());
    }
    let definitions = definitions();
    let count = definitions.len();
    for definition in definitions {
        client
            .create_offering(with(
                pb::CreateOfferingRequest {
                    definition: Some(definition),
                },
                admin,
            )?)
            .await?;
    }
    Ok(count)
}
