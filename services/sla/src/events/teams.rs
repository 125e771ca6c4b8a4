//! The directory's teams, projected: which calendar each team names, so an OLA counts on the
//! owning team's calendar. Team events carry the team after the change, with its version, so
//! an older event never overwrites a newer one.

use std::sync::Arc;

use desk_kit::{
    events::{Effect, Handle, HandlerError, IncomingEvent},
    ids,
};
use desk_proto::directory::v1 as directory;

use crate::store::{SlaStore, StoreError};

pub const DURABLE: &str = "sla-teams";

pub fn subjects(region: &str) -> Vec<String> {
    vec![format!("desk.{region}.directory.*.team.>")]
}

pub struct TeamEvents {
    pub store: Arc<SlaStore>,
}

pub trait CarriesTeam {
    fn team(self) -> Option<directory::Team>;
}

impl CarriesTeam for directory::TeamCreated {
    fn team(self) -> Option<directory::Team> {
        self.team
    }
}

impl CarriesTeam for directory::TeamUpdated {
    fn team(self) -> Option<directory::Team> {
        self.team
    }
}

impl CarriesTeam for directory::TeamRetired {
    fn team(self) -> Option<directory::Team> {
        self.team
    }
}

#[async_trait::async_trait]
impl<M: CarriesTeam + Send + 'static> Handle<M> for TeamEvents {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: M,
    ) -> Result<(), HandlerError> {
        let Some(team) = message.team() else {
            return Err(HandlerError::Reject("no team in the event".into()));
        };
        if team.id.is_empty() {
            return Err(HandlerError::Reject("the team has no id".into()));
        }
        // A calendar id that is not one (the directory keeps what it is given) counts as none.
        let calendar = ids::parse_id(&team.calendar_id).map(|id| id.uuid);
        self.store
            .save_team(
                effect.txn(),
                &event.attributes.tenant,
                &team.id,
                calendar,
                &team.region,
                team.version,
            )
            .await
            .map_err(|e: StoreError| HandlerError::Retry(e.to_string()))?;
        Ok(())
    }
}
