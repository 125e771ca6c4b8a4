//! Change-caused incidents: a new incident (`ticket.created` from the tickets service) on a CI a
//! recently implemented change touched — or on a CI that change's CIs' failure reaches, walking
//! the dependency graph the way impact flows — is flagged on that change as possibly caused by
//! it: a `suspected_incidents` entry and a `change.incident_suspected` event whose suggested link
//! is `caused_by_change` from the ticket to the change.
//!
//! "Recently" is the tenant policy's `incident_window_minutes` after the end of the
//! implementation, measured on this service's clock when the event is applied (ticket times come
//! from another service's clock, perhaps another region's).

use std::sync::Arc;

use desk_kit::{
    auth::Role,
    events::{Effect, Handle, HandlerError, IncomingEvent},
    ids,
};
use desk_proto::tickets::v1 as tickets;
use uuid::Uuid;

use crate::{
    api::Graphs,
    domain::{Direction, SuspectedIncident},
    events,
    store::{ChangeStore, HistoryActor},
};

pub const DURABLE: &str = "change-incident-suspects";
pub const TICKET_CREATED: &str = "desk.tickets.ticket.created.v1";

pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.tickets.*.ticket.created")]
}

pub struct IncidentHandler {
    pub store: Arc<ChangeStore>,
    pub graphs: Arc<Graphs>,
    pub region: String,
}

#[async_trait::async_trait]
impl Handle<tickets::TicketCreated> for IncidentHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: tickets::TicketCreated,
    ) -> Result<(), HandlerError> {
        let Some(ticket) = message.ticket else {
            return Err(HandlerError::Reject("no ticket in the event".into()));
        };
        if ticket.r#type != tickets::TicketType::Incident as i32 {
            return Ok(());
        }
        let incident_cis: Vec<Uuid> = ticket
            .affected_ci_ids
            .iter()
            .filter_map(|id| {
                ids::parse_id(id)
                    .filter(|p| p.region == self.region)
                    .map(|p| p.uuid)
            })
            .collect();
        if incident_cis.is_empty() {
            return Ok(());
        }
        let tenant = &event.attributes.tenant;
        let now = effect.now();
        let retry = |e: crate::store::StoreError| HandlerError::Retry(e.to_string());
        let (policy, _) = self
            .store
            .policy(effect.txn(), tenant)
            .await
            .map_err(retry)?;
        let since = now - chrono::Duration::minutes(i64::from(policy.incident_window_minutes));
        let suspects = self
            .store
            .implemented_since(tenant, since)
            .await
            .map_err(retry)?;
        for mut change in suspects {
            if change
                .suspected_incidents
                .iter()
                .any(|s| s.ticket_id == ticket.id)
            {
                continue;
            }
            // The nearest incident CI the change's CIs reach, with the path that explains it.
            let found = self.graphs.read(tenant, |p| {
                let graph = &p.graph;
                let starts: Vec<u32> = change
                    .affected_cis
                    .iter()
                    .filter_map(|ci| graph.position(*ci))
                    .collect();
                let wanted: Vec<u32> = incident_cis
                    .iter()
                    .filter_map(|ci| graph.position(*ci))
                    .collect();
                let walk = graph.walk(&starts, Direction::Upstream, None, |r| {
                    wanted.contains(&r.node)
                });
                walk.reached
                    .iter()
                    .find(|r| wanted.contains(&r.node))
                    .map(|r| (graph.node(r.node).id, walk.path_to(r.node)))
            });
            let Some((ci, path)) = found else { continue };
            let suspected = SuspectedIncident {
                ticket_id: ticket.id.clone(),
                ticket_number: ticket.number.clone(),
                ci,
                path,
                at: now,
            };
            let read = change.version;
            change.suspected_incidents.push(suspected.clone());
            change.touch(now);
            if !self
                .store
                .update_change(effect.txn(), &change, read)
                .await
                .map_err(retry)?
            {
                return Err(HandlerError::Retry(
                    "the change was written meanwhile".into(),
                ));
            }
            let actor = HistoryActor {
                subject: crate::SERVICE.to_owned(),
                name: String::new(),
                roles: vec![Role::Service.as_str().to_owned()],
            };
            let note = format!(
                "incident {} on {} may have been caused by this change",
                ticket.number,
                ids::format_id(&self.region, ci)
            );
            self.store
                .append_history(
                    effect.txn(),
                    &change,
                    &actor,
                    "incident_suspected",
                    &[],
                    &note,
                    now,
                )
                .await
                .map_err(retry)?;
            effect
                .publish(events::incident_suspected(
                    &self.region,
                    &change,
                    &suspected,
                ))
                .await?;
            tracing::info!(change = %change.number, ticket = %ticket.number, "incident suspected of being caused by a change");
        }
        Ok(())
    }
}
