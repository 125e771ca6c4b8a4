//! `CreateTicket`: who may set what, idempotent retries, the tenant's numbering, the new ticket
//! with its history entry and `ticket.created`.

use chrono::{DateTime, Utc};
use desk_kit::{
    auth::Caller,
    idempotency::{IdempotentCreate, Recorded},
    ids,
};

use super::{TicketApi, TicketError, TicketResult, parse::CreateKey};
use crate::{
    domain::{
        access,
        creation::{CreateTicket, NewTicketIdentity},
        record::Ticket,
    },
    store::IDEMPOTENCY_KEYS,
};

impl TicketApi {
    pub(super) async fn create(
        &self,
        caller: &Caller,
        command: CreateTicket,
        key: Option<CreateKey>,
        now: DateTime<Utc>,
    ) -> TicketResult<Ticket> {
        access::check_requester_fields(caller, &command.requested_fields(caller))?;

        let idempotent = key.and_then(|CreateKey { key, fingerprint }| {
            IdempotentCreate::new(&caller.tenant, &caller.subject, &key, || fingerprint)
        });
        if let Some(create) = &idempotent
            && let Some(existing) = self.replay(caller, create).await?
        {
            return Ok(existing);
        }

        let settings = self.store.cached_settings(&caller.tenant).await?;
        let ticket_type = command.ticket_type;
        self.store
            .prepare_numbering(&caller.tenant, ticket_type)
            .await?;
        let txn = self.store.begin().await?;
        let number = self
            .store
            .next_number(&txn, &caller.tenant, ticket_type)
            .await?;
        let identity = NewTicketIdentity {
            id: ids::new_uuid(),
            number,
        };
        let (ticket, change) =
            command.into_ticket(caller, identity, &settings.priority_matrix, now);
        self.store.insert(&txn, &ticket).await?;
        self.record(&txn, caller, &ticket, change, now).await?;
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, ticket.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            // A concurrent retry with the same key won: answer with its ticket, write nothing.
            // Its ticket is gone only if someone deleted it in between, which nothing here does;
            // NOT_FOUND is then the truth.
            drop(txn);
            return self
                .replay(caller, create)
                .await?
                .ok_or(TicketError::NotFound);
        }
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    /// The ticket an earlier create with this key made, if the body matches; a conflict if it does not.
    async fn replay(
        &self,
        caller: &Caller,
        create: &IdempotentCreate,
    ) -> TicketResult<Option<Ticket>> {
        let conn = self.store.db().connection();
        let Some(ticket_id) = IDEMPOTENCY_KEYS.earlier_result(conn, create).await? else {
            return Ok(None);
        };
        Ok(self.store.find(conn, &caller.tenant, ticket_id).await?)
    }
}
