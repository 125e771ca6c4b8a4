//! Provisioning: checks of a batch on its own, and plans against a directory.

use std::collections::HashMap;

use uuid::Uuid;

use super::*;
use crate::domain::{
    facts::Fact,
    membership::Membership,
    person::{Person, PersonFieldsInput, PersonStatus, deactivate},
    team::Team,
    testing::{at, id_of, person, team},
};

fn input<'a>(external_id: &'a str, name: &'a str) -> ProvisionedPersonInput<'a> {
    ProvisionedPersonInput {
        external_id,
        fields: PersonFieldsInput {
            display_name: name,
            email: "",
            ..PersonFieldsInput::default()
        },
        ..ProvisionedPersonInput::default()
    }
}

fn fields(violations: &Violations) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

fn checked(people: &[ProvisionedPersonInput<'_>]) -> CheckedBatch {
    check_batch("entra-id", people, false, false).expect("a valid batch")
}

fn directory(teams: Vec<Team>) -> Directory {
    Directory {
        tenant: "acme".into(),
        region: "emea".into(),
        teams,
        ..Directory::default()
    }
}

/// A person the directory has, provisioned by `entra-id` as `external_id`.
fn provisioned(external_id: &str, name: &str) -> Person {
    let mut known = person(external_id);
    known.external_id = Some(external_id.to_owned());
    known.fields.display_name = name.to_owned();
    known.source = "entra-id".into();
    known
}

fn knowing(mut directory: Directory, people: &[Person]) -> Directory {
    for known in people {
        if let Some(external) = &known.external_id {
            directory
                .by_external_id
                .insert(external.clone(), known.clone());
        }
        if let Some(manager) = known.manager_id {
            directory.manager_links.insert(known.id, manager);
        }
    }
    directory
}

fn run(
    batch: &CheckedBatch,
    directory: &Directory,
) -> Result<(ProvisioningPlan, ProvisioningWrites), Violations> {
    let mut counter = 0u128;
    plan(
        batch,
        directory,
        at(1_000),
        &mut |external| id_of(&format!("new:{external}")),
        &mut || {
            counter += 1;
            Uuid::from_u128(counter)
        },
    )
}

fn actions(plan: &ProvisioningPlan) -> Vec<(&str, ProvisioningAction)> {
    plan.people
        .iter()
        .map(|p| (p.external_id.as_str(), p.action))
        .collect()
}

fn fact_names(writes: &ProvisioningWrites) -> Vec<(&'static str, &'static str)> {
    writes.facts.iter().map(Fact::name).collect()
}

#[test]
fn duplicate_external_ids_and_subjects_in_one_batch_are_each_a_violation() {
    let mut second = input("e-1", "Bea");
    second.subject = "shared";
    let mut third = input("e-3", "Cid");
    third.subject = "shared";
    let refused = check_batch(
        "entra-id",
        &[input("e-1", "Ann"), second, third],
        false,
        false,
    );
    let violations = refused.expect_err("refused");
    assert_eq!(
        fields(&violations),
        ["people[1].external_id", "people[2].subject"]
    );
    assert!(
        violations
            .iter()
            .next()
            .is_some_and(|v| v.description.contains("people[0]"))
    );
}

#[test]
fn a_batch_reports_every_bad_person_at_once() {
    let mut bad_email = input("e-2", "Bea");
    bad_email.fields.email = "bea@";
    let mut bad_zone = input("e-3", "Cid");
    bad_zone.fields.time_zone = "Europe/Nowhere";
    bad_zone.fields.locale = "xx-invalid-locale-tag-here";
    let mut self_managed = input("e-4", "Dee");
    self_managed.manager_external_id = "e-4";
    let mut no_team = input("e-5", "Eve");
    no_team.teams = vec![("", None), ("Network", None), ("network", None)];
    let violations = check_batch(
        "entra-id",
        &[
            input("", "Nobody"),
            bad_email,
            bad_zone,
            self_managed,
            no_team,
        ],
        false,
        false,
    )
    .expect_err("refused");
    assert_eq!(
        fields(&violations),
        [
            "people[0].external_id",
            "people[1].email",
            "people[2].locale",
            "people[2].time_zone",
            "people[3].manager_external_id",
            "people[4].teams[0].team",
            "people[4].teams[2].team",
        ]
    );
}

#[test]
fn a_batch_needs_a_source_of_its_own_and_somebody_in_it() {
    for source in ["", "api", "token", "two words"] {
        let violations =
            check_batch(source, &[input("e-1", "Ann")], false, false).expect_err("refused");
        assert_eq!(fields(&violations), ["source"], "{source:?}");
    }
    let violations = check_batch("entra-id", &[], true, false).expect_err("refused");
    assert_eq!(fields(&violations), ["people"]);
}

#[test]
fn a_first_batch_creates_everyone_with_their_managers_and_teams() {
    let network = team("Network");
    let mut ann = input("e-1", "Ann");
    ann.teams = vec![("network", Some(MembershipRole::Lead))];
    let mut bea = input("e-2", "Bea");
    bea.manager_external_id = "e-1";
    bea.teams = vec![("Network", None)];
    let batch = checked(&[ann, bea]);
    let (plan, writes) = run(&batch, &directory(vec![network.clone()])).expect("planned");

    assert_eq!(
        actions(&plan),
        [
            ("e-1", ProvisioningAction::Create),
            ("e-2", ProvisioningAction::Create)
        ]
    );
    let counts = plan.counts();
    assert_eq!((counts.creates, counts.memberships_added), (2, 2));
    assert_eq!(writes.created.len(), 2);
    assert_eq!(writes.created[1].manager_id, Some(writes.created[0].id));
    assert_eq!(writes.created[0].source, "entra-id");
    assert_eq!(writes.new_memberships.len(), 2);
    assert_eq!(writes.new_memberships[0].role, MembershipRole::Lead);
    assert_eq!(writes.new_memberships[0].team_name, "Network");
    assert_eq!(
        fact_names(&writes),
        [
            ("person", "created"),
            ("membership", "added"),
            ("person", "created"),
            ("membership", "added")
        ]
    );
}

#[test]
fn the_same_batch_again_is_unchanged_and_writes_nothing() {
    let network = team("Network");
    let mut ann = input("e-1", "Ann");
    ann.teams = vec![("Network", None)];
    let batch = checked(&[ann]);
    let (_, first) = run(&batch, &directory(vec![network.clone()])).expect("planned");

    let mut known = directory(vec![network]);
    known = knowing(known, &first.created);
    known
        .memberships
        .insert(first.created[0].id, first.new_memberships.clone());
    let (plan, writes) = run(&batch, &known).expect("planned");
    assert_eq!(actions(&plan), [("e-1", ProvisioningAction::Unchanged)]);
    assert_eq!(writes, ProvisioningWrites::default());
}

#[test]
fn a_changed_field_is_an_update_of_the_stored_version() {
    let ann = provisioned("e-1", "Ann");
    let known = knowing(directory(vec![]), std::slice::from_ref(&ann));
    let mut renamed = input("e-1", "Ann Andersson");
    renamed.fields.time_zone = "Europe/Stockholm";
    let (plan, writes) = run(&checked(&[renamed]), &known).expect("planned");
    assert_eq!(actions(&plan), [("e-1", ProvisioningAction::Update)]);
    let changed: Vec<_> = plan.people[0].changes.field_names().collect();
    assert_eq!(changed, ["display_name", "time_zone"]);
    let (person, expected) = &writes.changed[0];
    assert_eq!((person.version, *expected), (ann.version + 1, ann.version));
    assert_eq!(fact_names(&writes), [("person", "updated")]);
}

#[test]
fn a_complete_sync_deactivates_who_it_no_longer_names_and_keeps_them() {
    let network = team("Network");
    let ann = provisioned("e-1", "Ann");
    let mut bea = provisioned("e-2", "Bea");
    bea.manager_id = Some(ann.id);
    let mut known = knowing(
        directory(vec![network.clone()]),
        &[ann.clone(), bea.clone()],
    );
    known.missing = vec![ann.clone()];
    known.memberships.insert(
        ann.id,
        vec![Membership {
            id: Uuid::from_u128(77),
            tenant_id: "acme".into(),
            team_id: network.id,
            person_id: ann.id,
            role: MembershipRole::Lead,
            active: true,
            version: 1,
            created_at: at(0),
            updated_at: at(0),
            team_name: String::new(),
            person_display_name: String::new(),
        }],
    );
    let mut bea_in_batch = input("e-2", "Bea");
    bea_in_batch.manager_external_id = "e-1";
    let batch = check_batch("entra-id", &[bea_in_batch], true, false).expect("a valid batch");
    assert_eq!(
        batch.missing(&[(ann.id, Some("e-1".into())), (bea.id, Some("e-2".into()))]),
        [ann.id]
    );
    let (plan, writes) = run(&batch, &known).expect("planned");
    assert_eq!(
        actions(&plan),
        [
            ("e-2", ProvisioningAction::Unchanged),
            ("e-1", ProvisioningAction::Deactivate)
        ]
    );
    let (gone, _) = &writes.changed[0];
    assert_eq!(gone.status, PersonStatus::Deactivated);
    assert_eq!(gone.fields, ann.fields, "kept, not deleted");
    match &writes.facts[..] {
        [Fact::PersonDeactivated { report, .. }] => {
            assert_eq!(report.team_ids, [network.id]);
            assert_eq!(report.led_team_ids, [network.id]);
            assert_eq!(report.direct_report_ids, [bea.id]);
        }
        other => panic!("expected one deactivation, got {other:?}"),
    }
}

#[test]
fn a_deactivated_person_named_again_is_reactivated() {
    let ann = deactivate(&provisioned("e-1", "Ann"), at(5))
        .expect("deactivated")
        .person;
    let known = knowing(directory(vec![]), std::slice::from_ref(&ann));
    let (plan, writes) = run(&checked(&[input("e-1", "Ann")]), &known).expect("planned");
    assert_eq!(actions(&plan), [("e-1", ProvisioningAction::Reactivate)]);
    assert_eq!(writes.changed[0].0.status, PersonStatus::Active);
    let changed: Vec<_> = plan.people[0].changes.field_names().collect();
    assert_eq!(changed, ["status"]);
}

#[test]
fn a_manager_chain_closed_by_the_batch_names_every_person_on_the_cycle() {
    // Stored: Bea reports to Ann. The batch says Ann reports to Cid and Cid to Bea.
    let ann = provisioned("e-1", "Ann");
    let mut bea = provisioned("e-2", "Bea");
    bea.manager_id = Some(ann.id);
    let known = knowing(directory(vec![]), &[ann, bea]);
    let mut ann_in_batch = input("e-1", "Ann");
    ann_in_batch.manager_external_id = "e-3";
    let mut cid = input("e-3", "Cid");
    cid.manager_external_id = "e-2";
    let mut with_manager = known.clone();
    with_manager.by_external_id.remove("e-3");
    let violations =
        run(&checked(&[ann_in_batch, cid]), &with_manager).expect_err("a cycle is refused");
    assert_eq!(
        fields(&violations),
        [
            "people[0].manager_external_id",
            "people[1].manager_external_id"
        ]
    );
    assert!(
        violations
            .iter()
            .all(|v| v.description.contains("cycle in the manager chain"))
    );
}

#[test]
fn unknown_managers_and_teams_and_retired_teams_are_refused() {
    let retired = crate::domain::team::retire(&team("Old desk"), 0, at(1))
        .expect("retired")
        .team;
    let mut ann = input("e-1", "Ann");
    ann.manager_external_id = "e-404";
    ann.teams = vec![("No such team", None), ("old desk", None)];
    let violations = run(&checked(&[ann]), &directory(vec![retired])).expect_err("refused");
    assert_eq!(
        fields(&violations),
        [
            "people[0].manager_external_id",
            "people[0].teams[0].team",
            "people[0].teams[1].team"
        ]
    );
}

#[test]
fn a_person_who_signed_in_first_is_adopted_by_subject() {
    let mut rita = person("rita");
    rita.source = "token".into();
    let mut known = directory(vec![]);
    known.by_subject.insert("rita".into(), rita.clone());
    let mut item = input("e-9", "Rita Requester");
    item.subject = "rita";
    let (plan, writes) = run(&checked(&[item]), &known).expect("planned");
    assert_eq!(plan.people[0].person_id, rita.id);
    assert_eq!(plan.people[0].action, ProvisioningAction::Update);
    let changed: Vec<_> = plan.people[0].changes.field_names().collect();
    assert_eq!(changed, ["display_name", "external_id", "source"]);
    assert_eq!(writes.changed[0].0.external_id.as_deref(), Some("e-9"));
}

#[test]
fn a_subject_that_belongs_to_someone_else_is_refused() {
    let ann = provisioned("e-1", "Ann");
    let other = provisioned("e-2", "Bea");
    let mut known = knowing(directory(vec![]), std::slice::from_ref(&ann));
    known.by_subject.insert("e-2".into(), other);
    let mut item = input("e-1", "Ann");
    item.subject = "e-2";
    let violations = run(&checked(&[item]), &known).expect_err("refused");
    assert_eq!(fields(&violations), ["people[0].subject"]);
}

#[test]
fn replacing_memberships_removes_the_teams_not_listed() {
    let (network, database) = (team("Network"), team("Database"));
    let ann = provisioned("e-1", "Ann");
    let mut known = knowing(
        directory(vec![network.clone(), database.clone()]),
        std::slice::from_ref(&ann),
    );
    let member_of = |team: &Team, id: u128| Membership {
        id: Uuid::from_u128(id),
        tenant_id: "acme".into(),
        team_id: team.id,
        person_id: ann.id,
        role: MembershipRole::Member,
        active: true,
        version: 2,
        created_at: at(0),
        updated_at: at(0),
        team_name: String::new(),
        person_display_name: String::new(),
    };
    known.memberships.insert(
        ann.id,
        vec![member_of(&network, 1), member_of(&database, 2)],
    );
    let mut item = input("e-1", "Ann");
    item.teams = vec![("Network", None)];
    let keep = check_batch("entra-id", std::slice::from_ref(&item), false, false).expect("valid");
    let (plan, _) = run(&keep, &known).expect("planned");
    assert_eq!(plan.people[0].action, ProvisioningAction::Unchanged);

    let replace = check_batch("entra-id", &[item], false, true).expect("valid");
    let (plan, writes) = run(&replace, &known).expect("planned");
    assert_eq!(plan.people[0].action, ProvisioningAction::Update);
    assert_eq!(plan.people[0].teams_removed, [database.id]);
    let (removed, expected) = &writes.changed_memberships[0];
    assert!(!removed.active);
    assert_eq!((removed.version, *expected), (3, 2));
    assert_eq!(removed.team_name, "Database");
    assert_eq!(fact_names(&writes), [("membership", "removed")]);
}

#[test]
fn a_staged_plan_is_what_a_commit_plans_again_with_the_same_ids() {
    let batch = checked(&[input("e-1", "Ann"), input("e-2", "Bea")]);
    let known = directory(vec![]);
    let (staged, _) = run(&batch, &known).expect("planned");
    let ids: HashMap<String, Uuid> = staged
        .people
        .iter()
        .map(|p| (p.external_id.clone(), p.person_id))
        .collect();
    let (again, writes) = plan(
        &batch,
        &known,
        at(2_000),
        &mut |external| ids.get(external).copied().unwrap_or_else(Uuid::now_v7),
        &mut Uuid::now_v7,
    )
    .expect("planned");
    assert_eq!(again, staged);
    assert_eq!(writes.created[0].created_at, at(2_000));
}
