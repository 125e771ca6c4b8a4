//! Who may do what with a ticket, decided from the caller's verified claims and a few facts about
//! the ticket.
//!
//! Two rules shape everything here. No one crosses tenants, whatever their roles. And a ticket the
//! caller may not read must look exactly like one that does not exist, so ids cannot be probed:
//! checks about one ticket return [`AccessError::NotFound`] for it, and keep
//! [`AccessError::Denied`] for callers who can see the ticket but not do the thing.
//!
//! The caller is the kit's [`Caller`], with the roles every service reads; what each role may do
//! with a ticket is decided here. Predicates about the caller alone (`is_staff`, `can_work`,
//! `can_manage_settings`) return `bool`; checks that involve a ticket return `Result` so the API
//! can answer `NOT_FOUND` or `PERMISSION_DENIED`.

use desk_kit::auth::{Caller, Role};

use super::ticket::{Status, Visibility};

/// The roles that work tickets: agents, managers, admins and integrators. Change, catalog and
/// CMDB roles are not among them: they act in other services and, on the desk, are requesters
/// like anyone else.
/// `Service`: another desk service with a service token, which reaches only the methods in
/// [`SERVICE_METHODS`] (the catalog making and resolving a request's service request ticket).
pub const STAFF_ROLES: &[Role] = &[
    Role::Agent,
    Role::Manager,
    Role::Admin,
    Role::Integrator,
    Role::Service,
];

/// The methods other desk services may call with a service token.
pub const SERVICE_METHODS: &[&str] = &[
    "/desk.tickets.v1.TicketService/CreateTicket",
    "/desk.tickets.v1.TicketService/GetTicket",
    "/desk.tickets.v1.TicketService/ResolveTicket",
];

/// Whether the caller works tickets (one of [`STAFF_ROLES`]); a requester alone does not.
pub fn is_staff(caller: &Caller) -> bool {
    caller.has_any(STAFF_ROLES)
}

fn is_requester_of(caller: &Caller, facts: &TicketAccessFacts) -> bool {
    caller.tenant == facts.tenant && caller.subject == facts.requester_id
}

/// What access decisions need to know about one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketAccessFacts {
    pub tenant: String,
    pub requester_id: String,
    pub watcher_ids: Vec<String>,
}

/// Fields of a create or update request that only staff may set: each says whether the request
/// sets it. Everything else — title, description, channel, category, affected service — a
/// requester may set; impact and urgency are staff-only so that requesters cannot raise their own
/// priority (their tickets start at medium × medium).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedFields {
    pub impact: bool,
    pub urgency: bool,
    pub assignment_group: bool,
    pub assignee: bool,
    pub tier: bool,
    pub major_incident: bool,
    /// The request names a requester other than the caller (raising a ticket on someone's behalf).
    pub requester_other_than_self: bool,
    /// The request carries an internal comment.
    pub internal_comment: bool,
    pub root_cause: bool,
    pub workaround: bool,
    pub known_error: bool,
}

impl RequestedFields {
    /// The API names of the staff-only fields this request sets, in a fixed order.
    pub fn staff_only_fields(&self) -> Vec<&'static str> {
        [
            (self.impact, "impact"),
            (self.urgency, "urgency"),
            (self.assignment_group, "assignment_group_id"),
            (self.assignee, "assignee_id"),
            (self.tier, "tier"),
            (self.major_incident, "major_incident"),
            (self.requester_other_than_self, "requester_id"),
            (self.internal_comment, "visibility"),
            (self.root_cause, "root_cause"),
            (self.workaround, "workaround"),
            (self.known_error, "known_error"),
        ]
        .into_iter()
        .filter_map(|(set, field)| set.then_some(field))
        .collect()
    }
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The caller may not see the ticket; answer exactly as if it did not exist.
    #[error("ticket not found")]
    NotFound,

    /// The caller sees the ticket but may not do this.
    #[error("{reason}")]
    Denied { reason: &'static str },

    /// The request sets fields only staff may set; each is reported as a field violation.
    #[error("only staff may set {}", .fields.join(", "))]
    StaffOnlyFields { fields: Vec<&'static str> },
}

/// Whether the caller may see the ticket: same tenant, and staff, the requester or a watcher.
pub fn can_read(caller: &Caller, facts: &TicketAccessFacts) -> bool {
    caller.tenant == facts.tenant
        && (is_staff(caller)
            || caller.subject == facts.requester_id
            || facts.watcher_ids.contains(&caller.subject))
}

/// Whether the caller may comment: anyone who can read the ticket, but internal comments are for
/// staff only.
pub fn can_comment(
    caller: &Caller,
    facts: &TicketAccessFacts,
    visibility: Visibility,
) -> Result<(), AccessError> {
    if !can_read(caller, facts) {
        return Err(AccessError::NotFound);
    }
    if visibility == Visibility::Internal && !is_staff(caller) {
        return Err(AccessError::Denied {
            reason: "only staff may write internal comments",
        });
    }
    Ok(())
}

/// Whether the caller may see a comment on a ticket they can read: internal ones are for staff.
pub fn can_see_comment(caller: &Caller, visibility: Visibility) -> bool {
    visibility == Visibility::Public || is_staff(caller)
}

/// Whether the request may set the fields it sets: staff may set anything; everyone else gets the
/// full list of staff-only fields they tried to set.
pub fn check_requester_fields(
    caller: &Caller,
    requested: &RequestedFields,
) -> Result<(), AccessError> {
    if is_staff(caller) {
        return Ok(());
    }
    let fields = requested.staff_only_fields();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(AccessError::StaffOnlyFields { fields })
    }
}

/// Whether the caller works tickets: assigns, edits fields, moves status, logs work. Check
/// [`can_read`] first — this looks at roles only. The requester's own few moves are
/// [`can_reopen`], [`can_close`] and [`can_rate`].
pub fn can_work(caller: &Caller) -> bool {
    is_staff(caller)
}

/// Whether the caller may reopen a resolved ticket: staff, or its requester.
pub fn can_reopen(caller: &Caller, facts: &TicketAccessFacts) -> Result<(), AccessError> {
    staff_or_requester(
        caller,
        facts,
        "only staff or the requester may reopen a ticket",
    )
}

/// Whether the caller may close a resolved ticket: staff, or its requester accepting the
/// resolution.
pub fn can_close(caller: &Caller, facts: &TicketAccessFacts) -> Result<(), AccessError> {
    staff_or_requester(
        caller,
        facts,
        "only staff or the requester may close a ticket",
    )
}

/// Whether the caller may rate the ticket: its requester only, since the rating measures their
/// satisfaction.
pub fn can_rate(caller: &Caller, facts: &TicketAccessFacts) -> Result<(), AccessError> {
    if !can_read(caller, facts) {
        return Err(AccessError::NotFound);
    }
    if is_requester_of(caller, facts) {
        Ok(())
    } else {
        Err(AccessError::Denied {
            reason: "only the requester may rate a ticket",
        })
    }
}

/// Whether the caller may change the tenant's desk settings (priority matrix, reopen window).
pub fn can_manage_settings(caller: &Caller) -> bool {
    caller.has(Role::Admin) || caller.has(Role::Manager)
}

/// Work only staff do; each says why a caller without a staff role is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffWork {
    Assign,
    /// Any transition but closing, which the requester may do to accept a resolution.
    MoveThroughLifecycle,
    Resolve,
    LogWork,
    ReadWorklog,
    Link,
    ReadHistory,
    ReadSettings,
}

impl StaffWork {
    /// The refusal's text, shown to the caller as it is.
    pub const fn refusal(self) -> &'static str {
        match self {
            Self::Assign => "only staff may assign tickets",
            Self::MoveThroughLifecycle => "only staff may move a ticket through its lifecycle",
            Self::Resolve => "only staff may resolve tickets",
            Self::LogWork => "only staff log work",
            Self::ReadWorklog => "only staff see the worklog",
            Self::Link => "only staff may link tickets",
            Self::ReadHistory => "only staff read a ticket's history",
            Self::ReadSettings => "only staff read ticket settings",
        }
    }
}

/// Whether the caller may do `work`: staff only. This looks at roles alone; reading the ticket is
/// checked where the ticket is loaded.
pub fn require_staff_for(caller: &Caller, work: StaffWork) -> Result<(), AccessError> {
    if can_work(caller) {
        Ok(())
    } else {
        Err(AccessError::Denied {
            reason: work.refusal(),
        })
    }
}

/// Whether the caller may change the tenant's settings, as a `Result` for the API.
pub fn check_manage_settings(caller: &Caller) -> Result<(), AccessError> {
    if can_manage_settings(caller) {
        Ok(())
    } else {
        Err(AccessError::Denied {
            reason: "only managers and admins change ticket settings",
        })
    }
}

/// Whether an update may replace the affected services and CIs or remove watchers: staff only. A
/// requester may add a watcher (a colleague who wants to follow the ticket) but not take one
/// away, and what is affected is the desk's assessment, not the requester's.
pub fn check_list_edits(
    caller: &Caller,
    replaces_affected: bool,
    removes_watchers: bool,
) -> Result<(), AccessError> {
    if is_staff(caller) || !(replaces_affected || removes_watchers) {
        Ok(())
    } else {
        Err(AccessError::Denied {
            reason: "only staff may change affected services and CIs or remove watchers",
        })
    }
}

/// Whether the caller may move the ticket to `target`: closing is the requester's acceptance of a
/// resolution and open to them ([`can_close`]); every other move is staff work.
pub fn can_transition(
    caller: &Caller,
    facts: &TicketAccessFacts,
    target: Status,
) -> Result<(), AccessError> {
    if target == Status::Closed {
        can_close(caller, facts)
    } else {
        require_staff_for(caller, StaffWork::MoveThroughLifecycle)
    }
}

/// Which tickets a list call may return, before the caller's own filters narrow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Every ticket of the caller's tenant (staff).
    Tenant,
    /// The tenant's tickets assigned to this agent (staff asking for "mine").
    AssignedTo(String),
    /// The tickets this requester raised or watches.
    RaisedOrWatchedBy(String),
}

/// The scope of a list call: staff list the tenant (only theirs when they ask for `mine`), anyone
/// else what they may read — the tickets they raised and those they watch, as [`can_read`] has
/// it, so a list never hides a ticket its reader may open nor shows one they may not. The tenant
/// itself is always the caller's.
pub fn list_scope(caller: &Caller, mine: bool) -> ListScope {
    if !is_staff(caller) {
        ListScope::RaisedOrWatchedBy(caller.subject.clone())
    } else if mine {
        ListScope::AssignedTo(caller.subject.clone())
    } else {
        ListScope::Tenant
    }
}

fn staff_or_requester(
    caller: &Caller,
    facts: &TicketAccessFacts,
    reason: &'static str,
) -> Result<(), AccessError> {
    if !can_read(caller, facts) {
        return Err(AccessError::NotFound);
    }
    if is_staff(caller) || is_requester_of(caller, facts) {
        Ok(())
    } else {
        Err(AccessError::Denied { reason })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn caller(subject: &str, roles: &[Role]) -> Caller {
        Caller {
            subject: subject.into(),
            tenant: "acme".into(),
            roles: roles.to_vec(),
            groups: Vec::new(),
            name: None,
            email: None,
            locale: None,
        }
    }

    fn from_tenant(tenant: &str, caller: Caller) -> Caller {
        Caller {
            tenant: tenant.into(),
            ..caller
        }
    }

    /// A ticket at acme raised by alice and watched by walter.
    fn ticket() -> TicketAccessFacts {
        TicketAccessFacts {
            tenant: "acme".into(),
            requester_id: "alice".into(),
            watcher_ids: vec!["walter".into()],
        }
    }

    fn alice() -> Caller {
        caller("alice", &[Role::Requester])
    }

    fn walter() -> Caller {
        caller("walter", &[Role::Requester])
    }

    fn mallory() -> Caller {
        caller("mallory", &[Role::Requester])
    }

    fn agent() -> Caller {
        caller("agent-7", &[Role::Agent])
    }

    #[test]
    fn staff_work_is_refused_to_requesters_with_its_own_reason() {
        for work in [
            StaffWork::Assign,
            StaffWork::MoveThroughLifecycle,
            StaffWork::Resolve,
            StaffWork::LogWork,
            StaffWork::ReadWorklog,
            StaffWork::Link,
            StaffWork::ReadHistory,
            StaffWork::ReadSettings,
        ] {
            assert_eq!(require_staff_for(&agent(), work), Ok(()));
            assert_eq!(
                require_staff_for(&alice(), work),
                Err(AccessError::Denied {
                    reason: work.refusal()
                })
            );
        }
        assert_eq!(StaffWork::Assign.refusal(), "only staff may assign tickets");
    }

    #[test]
    fn only_managers_and_admins_manage_settings() {
        assert_eq!(
            check_manage_settings(&caller("m", &[Role::Manager])),
            Ok(())
        );
        assert_eq!(check_manage_settings(&caller("a", &[Role::Admin])), Ok(()));
        assert_eq!(
            check_manage_settings(&agent()).map_err(|e| e.to_string()),
            Err("only managers and admins change ticket settings".into())
        );
    }

    #[test]
    fn a_requester_may_add_watchers_but_not_remove_them_nor_replace_what_is_affected() {
        assert_eq!(check_list_edits(&alice(), false, false), Ok(()));
        for (replaces_affected, removes_watchers) in [(true, false), (false, true), (true, true)] {
            assert_eq!(
                check_list_edits(&alice(), replaces_affected, removes_watchers)
                    .map_err(|e| e.to_string()),
                Err("only staff may change affected services and CIs or remove watchers".into())
            );
            assert_eq!(
                check_list_edits(&agent(), replaces_affected, removes_watchers),
                Ok(())
            );
        }
    }

    #[test]
    fn the_requester_may_close_but_every_other_move_is_staff_work() {
        assert_eq!(can_transition(&alice(), &ticket(), Status::Closed), Ok(()));
        assert_eq!(
            can_transition(&walter(), &ticket(), Status::Closed).map_err(|e| e.to_string()),
            Err("only staff or the requester may close a ticket".into())
        );
        assert_eq!(
            can_transition(&mallory(), &ticket(), Status::Closed),
            Err(AccessError::NotFound)
        );
        for target in [
            Status::New,
            Status::Assigned,
            Status::InProgress,
            Status::Pending,
        ] {
            assert_eq!(can_transition(&agent(), &ticket(), target), Ok(()));
            assert_eq!(
                can_transition(&alice(), &ticket(), target).map_err(|e| e.to_string()),
                Err("only staff may move a ticket through its lifecycle".into())
            );
        }
    }

    #[test]
    fn what_a_requester_lists_is_what_they_may_read() {
        // walter watches alice's ticket: he may read it, so his list scope takes watchers in
        for reader in [alice(), walter()] {
            assert!(can_read(&reader, &ticket()));
            assert_eq!(
                list_scope(&reader, false),
                ListScope::RaisedOrWatchedBy(reader.subject.clone())
            );
        }
    }

    #[test]
    fn staff_list_the_tenant_or_their_own_queue_and_requesters_what_they_raised_or_watch() {
        assert_eq!(list_scope(&agent(), false), ListScope::Tenant);
        assert_eq!(
            list_scope(&agent(), true),
            ListScope::AssignedTo("agent-7".into())
        );
        for mine in [false, true] {
            assert_eq!(
                list_scope(&alice(), mine),
                ListScope::RaisedOrWatchedBy("alice".into())
            );
        }
    }

    #[test]
    fn agents_managers_admins_integrators_and_services_are_staff() {
        // A service token reaches only `SERVICE_METHODS` (the catalog's request tickets).
        for role in [
            Role::Agent,
            Role::Manager,
            Role::Admin,
            Role::Integrator,
            Role::Service,
        ] {
            assert!(is_staff(&caller("x", &[role])), "{role}");
        }
    }

    #[test]
    fn requesters_and_other_practices_roles_are_not_staff() {
        for role in [
            Role::Requester,
            Role::ChangeManager,
            Role::CabMember,
            Role::CatalogAdmin,
            Role::ConfigurationManager,
        ] {
            assert!(!is_staff(&caller("x", &[role])), "{role}");
        }
        assert!(!is_staff(&caller("x", &[])));
    }

    #[test]
    fn one_staff_role_among_others_makes_staff() {
        assert!(is_staff(&caller(
            "x",
            &[Role::Requester, Role::CabMember, Role::Agent]
        )));
    }

    #[test]
    fn staff_read_every_ticket_of_their_tenant() {
        assert!(can_read(&agent(), &ticket()));
    }

    #[test]
    fn the_requester_and_watchers_read_the_ticket() {
        assert!(can_read(&alice(), &ticket()));
        assert!(can_read(&walter(), &ticket()));
    }

    #[test]
    fn other_requesters_cannot_read_the_ticket() {
        assert!(!can_read(&mallory(), &ticket()));
        assert!(!can_read(
            &caller("m", &[Role::ChangeManager, Role::CatalogAdmin]),
            &ticket()
        ));
    }

    #[test]
    fn no_one_reads_across_tenants() {
        for caller in [alice(), walter(), agent(), caller("root", &[Role::Admin])] {
            assert!(
                !can_read(&from_tenant("globex", caller.clone()), &ticket()),
                "{caller:?}"
            );
        }
    }

    #[test]
    fn readers_may_comment_publicly() {
        for caller in [alice(), walter(), agent()] {
            assert_eq!(can_comment(&caller, &ticket(), Visibility::Public), Ok(()));
        }
    }

    #[test]
    fn only_staff_may_comment_internally() {
        assert_eq!(
            can_comment(&agent(), &ticket(), Visibility::Internal),
            Ok(())
        );
        let error = can_comment(&alice(), &ticket(), Visibility::Internal).expect_err("requester");
        assert_eq!(error.to_string(), "only staff may write internal comments");
    }

    #[test]
    fn commenting_on_an_unreadable_ticket_looks_like_a_missing_ticket() {
        assert_eq!(
            can_comment(&mallory(), &ticket(), Visibility::Public),
            Err(AccessError::NotFound)
        );
        assert_eq!(
            can_comment(
                &from_tenant("globex", agent()),
                &ticket(),
                Visibility::Internal
            ),
            Err(AccessError::NotFound)
        );
    }

    #[test]
    fn internal_comments_are_hidden_from_non_staff() {
        assert!(can_see_comment(&alice(), Visibility::Public));
        assert!(!can_see_comment(&alice(), Visibility::Internal));
        assert!(can_see_comment(&agent(), Visibility::Internal));
    }

    #[test]
    fn a_requester_may_send_the_ordinary_fields() {
        assert_eq!(
            check_requester_fields(&alice(), &RequestedFields::default()),
            Ok(())
        );
    }

    #[test]
    fn a_requester_cannot_influence_priority() {
        let requested = RequestedFields {
            urgency: true,
            ..RequestedFields::default()
        };
        let error = check_requester_fields(&alice(), &requested).expect_err("urgency");
        assert_eq!(
            error,
            AccessError::StaffOnlyFields {
                fields: vec!["urgency"]
            }
        );
        assert_eq!(error.to_string(), "only staff may set urgency");
    }

    #[test]
    fn every_staff_only_field_a_requester_sends_is_reported_by_its_api_name() {
        let everything = RequestedFields {
            impact: true,
            urgency: true,
            assignment_group: true,
            assignee: true,
            tier: true,
            major_incident: true,
            requester_other_than_self: true,
            internal_comment: true,
            root_cause: true,
            workaround: true,
            known_error: true,
        };
        assert_eq!(
            check_requester_fields(&alice(), &everything),
            Err(AccessError::StaffOnlyFields {
                fields: vec![
                    "impact",
                    "urgency",
                    "assignment_group_id",
                    "assignee_id",
                    "tier",
                    "major_incident",
                    "requester_id",
                    "visibility",
                    "root_cause",
                    "workaround",
                    "known_error",
                ]
            })
        );
    }

    #[test]
    fn staff_may_set_any_field() {
        let requested = RequestedFields {
            impact: true,
            assignee: true,
            major_incident: true,
            ..RequestedFields::default()
        };
        assert_eq!(check_requester_fields(&agent(), &requested), Ok(()));
        assert_eq!(
            check_requester_fields(&caller("monitor", &[Role::Integrator]), &requested),
            Ok(())
        );
    }

    #[test]
    fn only_staff_work_tickets() {
        assert!(can_work(&agent()));
        assert!(can_work(&caller("m", &[Role::Manager])));
        assert!(!can_work(&alice()));
        assert!(!can_work(&caller("c", &[Role::ChangeManager])));
    }

    #[test]
    fn the_requester_and_staff_may_reopen_and_close() {
        for caller in [alice(), agent()] {
            assert_eq!(can_reopen(&caller, &ticket()), Ok(()));
            assert_eq!(can_close(&caller, &ticket()), Ok(()));
        }
    }

    #[test]
    fn a_watcher_may_neither_reopen_nor_close() {
        assert_eq!(
            can_reopen(&walter(), &ticket()).map_err(|e| e.to_string()),
            Err("only staff or the requester may reopen a ticket".into())
        );
        assert_eq!(
            can_close(&walter(), &ticket()).map_err(|e| e.to_string()),
            Err("only staff or the requester may close a ticket".into())
        );
    }

    #[test]
    fn only_the_requester_may_rate() {
        assert_eq!(can_rate(&alice(), &ticket()), Ok(()));
        assert_eq!(
            can_rate(&agent(), &ticket()),
            Err(AccessError::Denied {
                reason: "only the requester may rate a ticket"
            })
        );
        assert!(matches!(
            can_rate(&walter(), &ticket()),
            Err(AccessError::Denied { .. })
        ));
    }

    #[test]
    fn strangers_get_not_found_for_every_ticket_action() {
        for stranger in [
            mallory(),
            from_tenant("globex", alice()),
            from_tenant("globex", agent()),
        ] {
            assert_eq!(can_reopen(&stranger, &ticket()), Err(AccessError::NotFound));
            assert_eq!(can_close(&stranger, &ticket()), Err(AccessError::NotFound));
            assert_eq!(can_rate(&stranger, &ticket()), Err(AccessError::NotFound));
        }
    }

    #[test]
    fn admins_and_managers_manage_settings() {
        assert!(can_manage_settings(&caller("a", &[Role::Admin])));
        assert!(can_manage_settings(&caller("m", &[Role::Manager])));
        for role in [
            Role::Agent,
            Role::Integrator,
            Role::Requester,
            Role::CatalogAdmin,
        ] {
            assert!(!can_manage_settings(&caller("x", &[role])), "{role}");
        }
    }

    fn any_roles() -> impl Strategy<Value = Vec<Role>> {
        prop::collection::vec(prop::sample::select(Role::ALL), 0..4)
    }

    proptest! {
        #[test]
        fn no_role_and_no_relation_to_the_ticket_crosses_tenants(
            roles in any_roles(),
            subject in prop::sample::select(vec!["alice", "walter", "agent-7"]),
            visibility in prop::sample::select(Visibility::ALL),
        ) {
            let stranger = from_tenant("globex", caller(subject, &roles));
            prop_assert!(!can_read(&stranger, &ticket()));
            prop_assert_eq!(
                can_comment(&stranger, &ticket(), visibility),
                Err(AccessError::NotFound)
            );
            prop_assert_eq!(can_reopen(&stranger, &ticket()), Err(AccessError::NotFound));
            prop_assert_eq!(can_close(&stranger, &ticket()), Err(AccessError::NotFound));
            prop_assert_eq!(can_rate(&stranger, &ticket()), Err(AccessError::NotFound));
        }

        #[test]
        fn whoever_may_act_on_a_ticket_may_also_read_it(
            roles in any_roles(),
            subject in prop::sample::select(vec!["alice", "walter", "mallory"]),
            visibility in prop::sample::select(Visibility::ALL),
        ) {
            let caller = caller(subject, &roles);
            let acts = can_comment(&caller, &ticket(), visibility).is_ok()
                || can_reopen(&caller, &ticket()).is_ok()
                || can_close(&caller, &ticket()).is_ok()
                || can_rate(&caller, &ticket()).is_ok();
            prop_assert!(!acts || can_read(&caller, &ticket()));
        }
    }
}
