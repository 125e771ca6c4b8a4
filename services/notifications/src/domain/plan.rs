//! Who hears about an event: the rules that match it, their recipient roles resolved against the
//! event and the directory's teams, merged per person (one message per person and channel, urgent
//! when any matching rule is). The person who caused the event is not told about it.

use std::collections::BTreeMap;

use super::{
    model::EventFacts,
    rules::{Channel, RecipientRole, Rule},
};

/// What the directory says about the event's assignment group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFacts {
    pub members: Vec<String>,
    pub manager: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub person_id: String,
    pub channels: Vec<Channel>,
    pub urgent: bool,
}

/// The people to notify, in a stable order; `actor_person` (the actor's person id) is left out.
pub fn plan(
    rules: &[Rule],
    facts: &EventFacts,
    group: &GroupFacts,
    actor_person: Option<&str>,
) -> Vec<Planned> {
    let mut people: BTreeMap<String, Planned> = BTreeMap::new();
    for rule in rules
        .iter()
        .filter(|r| r.matches(&facts.event_type, &facts.variables))
    {
        let mut ids: Vec<String> = Vec::new();
        for role in &rule.recipients {
            match role {
                RecipientRole::Requester => ids.extend(facts.requester.clone()),
                RecipientRole::Assignee => ids.extend(facts.assignee.clone()),
                // The group hears about work only while nobody in it has taken it.
                RecipientRole::AssignmentGroup if facts.assignee.is_none() => {
                    ids.extend(group.members.iter().cloned())
                }
                RecipientRole::AssignmentGroup => {}
                RecipientRole::Watchers => ids.extend(facts.watchers.iter().cloned()),
                RecipientRole::GroupManager => ids.extend(group.manager.clone()),
                RecipientRole::Subscribers => ids.extend(rule.subscriber_ids.iter().cloned()),
                // Approvals and CABs come from the change service's events, which carry them in
                // `approvers` / `cab_members` variables.
                RecipientRole::Approvers | RecipientRole::CabMembers => {
                    let key = if *role == RecipientRole::Approvers {
                        "approvers"
                    } else {
                        "cab_members"
                    };
                    if let Some(list) = facts.variables.get(key).and_then(|v| v.as_array()) {
                        ids.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
                    }
                }
            }
        }
        for id in ids {
            if id.is_empty() || Some(id.as_str()) == actor_person {
                continue;
            }
            let entry = people.entry(id.clone()).or_insert_with(|| Planned {
                person_id: id,
                channels: Vec::new(),
                urgent: false,
            });
            entry.urgent |= rule.urgent;
            for c in rule.channels.iter().filter(|c| c.reaches_people()) {
                if !entry.channels.contains(c) {
                    entry.channels.push(*c);
                }
            }
        }
    }
    let mut planned: Vec<Planned> = people.into_values().collect();
    for p in &mut planned {
        p.channels.sort();
    }
    planned
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::domain::rules::{TICKET_ASSIGNED, TICKET_CREATED, TICKET_ESCALATED, default_rules};

    fn facts(event_type: &str, assignee: Option<&str>) -> EventFacts {
        EventFacts {
            event_id: Uuid::nil(),
            event_type: event_type.into(),
            tenant: "acme".into(),
            time: Utc::now(),
            aggregate: "t1".into(),
            ticket_id: Some("t1".into()),
            actor_subject: None,
            requester: Some("req".into()),
            assignee: assignee.map(str::to_owned),
            group: Some("g".into()),
            watchers: vec!["w1".into()],
            variables: json!({"ticket": {"major_incident": false}}),
        }
    }

    fn group() -> GroupFacts {
        GroupFacts {
            members: vec!["m1".into(), "m2".into()],
            manager: Some("boss".into()),
        }
    }

    fn ids(planned: &[Planned]) -> Vec<&str> {
        planned.iter().map(|p| p.person_id.as_str()).collect()
    }

    #[test]
    fn a_new_ticket_tells_its_requester() {
        let planned = plan(
            &default_rules(),
            &facts(TICKET_CREATED, None),
            &group(),
            None,
        );
        assert_eq!(ids(&planned), vec!["req"]);
        assert_eq!(planned[0].channels, vec![Channel::Email, Channel::InApp]);
        assert!(!planned[0].urgent);
    }

    #[test]
    fn work_reaches_the_assignee_or_else_the_whole_group() {
        let to_one = plan(
            &default_rules(),
            &facts(TICKET_ASSIGNED, Some("a1")),
            &group(),
            None,
        );
        assert_eq!(ids(&to_one), vec!["a1"]);
        let to_group = plan(
            &default_rules(),
            &facts(TICKET_ASSIGNED, None),
            &group(),
            None,
        );
        assert_eq!(ids(&to_group), vec!["m1", "m2"]);
    }

    #[test]
    fn the_actor_is_not_told_about_their_own_change() {
        let planned = plan(
            &default_rules(),
            &facts(TICKET_ASSIGNED, Some("a1")),
            &group(),
            Some("a1"),
        );
        assert!(planned.is_empty());
    }

    #[test]
    fn escalations_reach_the_manager_urgently() {
        let planned = plan(
            &default_rules(),
            &facts(TICKET_ESCALATED, None),
            &group(),
            None,
        );
        assert_eq!(ids(&planned), vec!["boss"]);
        assert!(planned[0].urgent);
    }

    #[test]
    fn approvers_come_from_the_events_variables_and_people_are_merged() {
        let mut rules = default_rules();
        rules.push(Rule {
            name: "approvals".into(),
            event_types: vec![TICKET_CREATED.into()],
            conditions: vec![],
            recipients: vec![RecipientRole::Approvers, RecipientRole::Requester],
            subscriber_ids: vec![],
            channels: vec![Channel::Sms, Channel::Webhook],
            urgent: true,
            enabled: true,
            built_in: false,
        });
        let mut f = facts(TICKET_CREATED, None);
        f.variables = json!({"approvers": ["ap1"], "ticket": {}});
        let planned = plan(&rules, &f, &group(), None);
        assert_eq!(ids(&planned), vec!["ap1", "req"]);
        let req = &planned[1];
        assert_eq!(
            req.channels,
            vec![Channel::Email, Channel::InApp, Channel::Sms]
        );
        assert!(req.urgent);
    }
}
