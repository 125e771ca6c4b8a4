//! CI updates of an implemented change applied to the CMDB: the consumer `change-ci-updates`
//! reads the service's own `change.implemented` events and calls the CMDB's `GetCi` and
//! `UpdateCi` with this service's service token, naming the change (its id) as the source
//! record, which the CMDB records as the values' provenance (source `change`, actor the change).
//!
//! Only `implemented` events (successful implementations) are read, so a failed change never
//! touches the CMDB. One event per transaction (the calls are outside the database): a retry
//! re-reads each CI and writes the same values again, which the CMDB takes as no change. The
//! versions written are recorded on the change (`applied_version`).

use std::sync::Arc;

use desk_kit::{
    auth::Role,
    calls::{CallContext, CallError, ServiceCalls},
    events::{Effect, Handle, HandlerError, IncomingEvent},
    ids,
};
use desk_proto::{
    change::v1 as pb, cmdb::v1 as cmdb, cmdb::v1::cmdb_service_client::CmdbServiceClient,
};

use crate::{
    api::convert,
    domain::Outcome,
    store::{ChangeStore, HistoryActor},
};

pub const DURABLE: &str = "change-ci-updates";
pub const IMPLEMENTED: &str = "desk.change.change.implemented.v1";

pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.change.*.change.implemented")]
}

pub struct CiUpdateHandler {
    pub store: Arc<ChangeStore>,
    pub calls: Arc<ServiceCalls>,
    pub region: String,
}

fn call_failed(error: CallError) -> HandlerError {
    if error.is_retryable() {
        HandlerError::Retry(error.to_string())
    } else {
        HandlerError::Reject(error.to_string())
    }
}

#[async_trait::async_trait]
impl Handle<pb::ChangeEvent> for CiUpdateHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::ChangeEvent,
    ) -> Result<(), HandlerError> {
        let tenant = &event.attributes.tenant;
        let id = message
            .change
            .as_ref()
            .and_then(|c| ids::parse_id(&c.id))
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or_else(|| HandlerError::Reject("no change of this region in the event".into()))?;
        let retry = |e: crate::store::StoreError| HandlerError::Retry(e.to_string());
        let Some(mut change) = self
            .store
            .find_change(effect.txn(), tenant, id)
            .await
            .map_err(retry)?
        else {
            return Err(HandlerError::Reject("the change is not stored".into()));
        };
        if change.outcome != Some(Outcome::Successful)
            || change.ci_updates.iter().all(|u| u.applied_version > 0)
        {
            return Ok(());
        }
        let record = ids::format_id(&self.region, change.id);
        let context = CallContext::as_service(tenant.clone());
        let mut client = CmdbServiceClient::new(self.calls.channel("cmdb").map_err(call_failed)?);
        for update in change
            .ci_updates
            .iter_mut()
            .filter(|u| u.applied_version == 0)
        {
            let ci_id = ids::format_id(&self.region, update.ci);
            let current = client
                .get_ci(
                    self.calls
                        .request(&context, cmdb::GetCiRequest { id: ci_id.clone() })
                        .map_err(call_failed)?,
                )
                .await
                .map_err(|status| call_failed(status.into()))?
                .into_inner()
                .ci
                .ok_or_else(|| HandlerError::Retry("the CMDB answered no CI".into()))?;
            let updated = client
                .update_ci(
                    self.calls
                        .request(
                            &context,
                            cmdb::UpdateCiRequest {
                                id: ci_id,
                                expected_version: current.version,
                                status: convert::status_pb(update),
                                attributes: convert::attributes_pb(update),
                                source_record: record.clone(),
                                ..Default::default()
                            },
                        )
                        .map_err(call_failed)?,
                )
                .await
                .map_err(|status| call_failed(status.into()))?
                .into_inner()
                .ci
                .ok_or_else(|| HandlerError::Retry("the CMDB answered no CI".into()))?;
            update.applied_version = updated.version;
        }
        let read = change.version;
        let now = effect.now();
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
        let note = format!("{} CI updates applied to the CMDB", change.ci_updates.len());
        self.store
            .append_history(
                effect.txn(),
                &change,
                &actor,
                "ci_updates_applied",
                &[],
                &note,
                now,
            )
            .await
            .map_err(retry)?;
        tracing::info!(change = %change.number, updates = change.ci_updates.len(), "ci updates applied to the cmdb");
        Ok(())
    }
}
