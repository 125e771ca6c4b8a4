//! `GetTicketSettings` and `UpdateTicketSettings`: a tenant's priority matrix and reopen window.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;
use desk_proto::tickets::v1 as pb;

use super::{TicketApi, TicketResult, convert};
use crate::domain::{StaffWork, TicketSettings, access};

impl TicketApi {
    pub(super) async fn settings(&self, caller: &Caller) -> TicketResult<pb::TicketSettings> {
        access::require_staff_for(caller, StaffWork::ReadSettings)?;
        Ok(convert::settings_to_pb(
            &self
                .store
                .settings(self.store.db().connection(), &caller.tenant)
                .await?,
        ))
    }

    /// Saves the tenant's settings. The caller was checked before the settings were parsed
    /// ([`access::check_manage_settings`]).
    pub(super) async fn update_settings(
        &self,
        caller: &Caller,
        settings: TicketSettings,
        now: DateTime<Utc>,
    ) -> TicketResult<pb::TicketSettings> {
        let txn = self.store.begin().await?;
        self.store
            .save_settings(&txn, &caller.tenant, &settings, now)
            .await?;
        self.store.commit(txn).await?;
        // This replica sees its own change at once; others within the cache's lifetime.
        self.store.forget_settings(&caller.tenant);
        Ok(convert::settings_to_pb(&settings))
    }
}
