//! The gRPC face of the tickets service. Every call reads the same way:
//!
//! 1. **parse** the request into a typed command ([`parse`]; every field violation at once,
//!    `INVALID_ARGUMENT`), with the caller from their verified token and the time from the clock;
//! 2. **authorize** what the caller's roles decide alone (`PERMISSION_DENIED`), then load the
//!    ticket (`NOT_FOUND` also when the caller may not see it), check the version the caller read
//!    (`ABORTED`) and what the caller may do with this ticket;
//! 3. let the **domain** rule decide the change and its facts (`FAILED_PRECONDITION` for the
//!    lifecycle);
//! 4. **store** the ticket, its history entry and its events in one transaction (`writes.rs`);
//! 5. **reply** with the result, errors classified by [`desk_kit::error::Classify`].
//!
//! A failed call leaves nothing behind.
//!
//! # Layout
//! - this file: [`TicketApi`] and the `TicketService` methods — parse, call, reply.
//! - [`parse`]: requests into commands; [`convert`]: domain values into proto messages.
//! - `writes.rs`: loading a ticket for a call and writing a change with its history and events.
//! - `create.rs`, `read.rs`, `edits.rs`, `moves.rs`, `conversation.rs`, `settings.rs`: the calls,
//!   by group, from authorization to commit.

pub mod convert;
mod error;
pub mod parse;

mod conversation;
mod create;
mod edits;
mod moves;
mod read;
mod settings;
mod writes;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::{auth, clock::SharedClock, error::Classify};
use desk_proto::tickets::v1 as pb;
use tonic::{Request, Response, Status};

pub use error::TicketError;

use crate::{
    domain::{TicketReference, access, record::Ticket},
    store::TicketStore,
};

type TicketResult<T> = Result<T, TicketError>;

/// The `desk.tickets.v1.TicketService` implementation.
#[derive(Clone)]
pub struct TicketApi {
    store: Arc<TicketStore>,
    region: String,
    clock: SharedClock,
}

impl TicketApi {
    pub fn new(store: Arc<TicketStore>, region: String, clock: SharedClock) -> Self {
        Self {
            store,
            region,
            clock,
        }
    }

    /// The time of the call, read once at the edge: every rule of the call sees the same instant.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn to_pb(&self, ticket: &Ticket) -> pb::Ticket {
        convert::ticket_to_pb(&self.region, ticket)
    }

    fn reference(&self, id: &str) -> TicketReference {
        TicketReference::parse(id, &self.region)
    }

    fn ticket_reply(&self, ticket: TicketResult<Ticket>) -> TicketResult<Option<pb::Ticket>> {
        ticket.map(|ticket| Some(self.to_pb(&ticket)))
    }
}

fn reply<T>(result: TicketResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Classify::into_status)
}

#[tonic::async_trait]
impl pb::ticket_service_server::TicketService for TicketApi {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::CreateTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let (command, key) = parse::create_ticket(request.into_inner())?;
                let ticket = self.create(&caller, command, key, now).await;
                Ok(pb::CreateTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let reference = self.reference(&request.get_ref().id);
        let ticket = self.get(&caller, &reference).await;
        reply(
            self.ticket_reply(ticket)
                .map(|ticket| pb::GetTicketResponse { ticket }),
        )
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            async {
                let query = parse::list_tickets(request.into_inner())?;
                self.list(&caller, query).await
            }
            .await,
        )
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::UpdateTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::update_ticket(request.into_inner(), &self.region)?;
                let ticket = self.update(&caller, command, now).await;
                Ok(pb::UpdateTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::AssignTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::assign_ticket(request.into_inner(), &self.region)?;
                let ticket = self.assign(&caller, command, now).await;
                Ok(pb::AssignTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn transition_ticket(
        &self,
        request: Request<pb::TransitionTicketRequest>,
    ) -> Result<Response<pb::TransitionTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::transition_ticket(request.into_inner(), &self.region)?;
                let ticket = self.transition(&caller, command, now).await;
                Ok(pb::TransitionTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn resolve_ticket(
        &self,
        request: Request<pb::ResolveTicketRequest>,
    ) -> Result<Response<pb::ResolveTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::resolve_ticket(request.into_inner(), &self.region)?;
                let ticket = self.resolve(&caller, command, now).await;
                Ok(pb::ResolveTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::ReopenTicketRequest>,
    ) -> Result<Response<pb::ReopenTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::reopen_ticket(request.into_inner(), &self.region)?;
                let ticket = self.reopen(&caller, command, now).await;
                Ok(pb::ReopenTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn add_comment(
        &self,
        request: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::AddCommentResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::add_comment(request.into_inner(), &self.region)?;
                let (comment, ticket_version) =
                    TicketApi::add_comment(self, &caller, command, now).await?;
                Ok(pb::AddCommentResponse {
                    comment: Some(comment),
                    ticket_version,
                })
            }
            .await,
        )
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let reference = self.reference(&request.get_ref().ticket_id);
        reply(
            self.comments(&caller, &reference)
                .await
                .map(|comments| pb::ListCommentsResponse { comments }),
        )
    }

    async fn add_worklog(
        &self,
        request: Request<pb::AddWorklogRequest>,
    ) -> Result<Response<pb::AddWorklogResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::add_worklog(request.into_inner(), &self.region)?;
                let (entry, ticket_version) =
                    TicketApi::add_worklog(self, &caller, command, now).await?;
                Ok(pb::AddWorklogResponse {
                    entry: Some(entry),
                    ticket_version,
                })
            }
            .await,
        )
    }

    async fn list_worklog(
        &self,
        request: Request<pb::ListWorklogRequest>,
    ) -> Result<Response<pb::ListWorklogResponse>, Status> {
        let caller = auth::caller(&request)?;
        let reference = self.reference(&request.get_ref().ticket_id);
        reply(self.worklog(&caller, &reference).await)
    }

    async fn add_link(
        &self,
        request: Request<pb::AddLinkRequest>,
    ) -> Result<Response<pb::AddLinkResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::add_link(request.into_inner(), &self.region)?;
                let (link, ticket_version) =
                    TicketApi::add_link(self, &caller, command, now).await?;
                Ok(pb::AddLinkResponse {
                    link: Some(link),
                    ticket_version,
                })
            }
            .await,
        )
    }

    async fn list_links(
        &self,
        request: Request<pb::ListLinksRequest>,
    ) -> Result<Response<pb::ListLinksResponse>, Status> {
        let caller = auth::caller(&request)?;
        let reference = self.reference(&request.get_ref().ticket_id);
        reply(
            self.links(&caller, &reference)
                .await
                .map(|links| pb::ListLinksResponse { links }),
        )
    }

    async fn update_problem(
        &self,
        request: Request<pb::UpdateProblemRequest>,
    ) -> Result<Response<pb::UpdateProblemResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::update_problem(request.into_inner(), &self.region)?;
                let ticket = TicketApi::update_problem(self, &caller, command, now).await;
                Ok(pb::UpdateProblemResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn rate_ticket(
        &self,
        request: Request<pb::RateTicketRequest>,
    ) -> Result<Response<pb::RateTicketResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                let command = parse::rate_ticket(request.into_inner(), &self.region)?;
                let ticket = self.rate(&caller, command, now).await;
                Ok(pb::RateTicketResponse {
                    ticket: self.ticket_reply(ticket)?,
                })
            }
            .await,
        )
    }

    async fn get_ticket_history(
        &self,
        request: Request<pb::GetTicketHistoryRequest>,
    ) -> Result<Response<pb::GetTicketHistoryResponse>, Status> {
        let caller = auth::caller(&request)?;
        let reference = self.reference(&request.get_ref().id);
        reply(
            self.history(&caller, &reference)
                .await
                .map(|entries| pb::GetTicketHistoryResponse { entries }),
        )
    }

    async fn get_ticket_settings(
        &self,
        request: Request<pb::GetTicketSettingsRequest>,
    ) -> Result<Response<pb::GetTicketSettingsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.settings(&caller)
                .await
                .map(|settings| pb::GetTicketSettingsResponse {
                    settings: Some(settings),
                }),
        )
    }

    async fn update_ticket_settings(
        &self,
        request: Request<pb::UpdateTicketSettingsRequest>,
    ) -> Result<Response<pb::UpdateTicketSettingsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let now = self.now();
        reply(
            async {
                // Refused before the settings are read: someone who may not change them learns
                // nothing from the answer about what would have been accepted.
                access::check_manage_settings(&caller)?;
                let settings = parse::update_settings(request.into_inner())?;
                let settings = TicketApi::update_settings(self, &caller, settings, now).await?;
                Ok(pb::UpdateTicketSettingsResponse {
                    settings: Some(settings),
                })
            }
            .await,
        )
    }
}
