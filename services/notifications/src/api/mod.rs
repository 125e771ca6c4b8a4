//! The gRPC service: parse → authorize → domain → store. Admins (and managers) write rules,
//! templates and webhook endpoints and read the delivery log and dead letters; everyone keeps
//! their own preferences and reads their own feed. Bad input is refused with every field
//! violation and nothing written.

pub mod convert;

use std::{pin::Pin, sync::Arc, time::Duration};

use desk_kit::{
    auth::{Caller, Role, caller},
    clock::SharedClock,
    error::{ApiError, Classify, FieldViolation},
};
use desk_proto::notifications::v1::{self as pb, notification_service_server::NotificationService};
use futures::Stream;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        model::{
            DeliveryStatus, Endpoint, EndpointSecret, StoredPreferences, StoredRule, StoredTemplate,
        },
        rules::default_rules,
        templates,
        webhook::Secret,
    },
    events::{
        notify::{FeedSignal, TENANT_DEFAULT_LOCALE, choose_template},
        transport::Http,
    },
    store::{DeliveryFilter, NotificationStore, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

impl Classify for NotificationError {
    fn classify(&self) -> ApiError {
        match self {
            NotificationError::Store(StoreError::Db(e)) | NotificationError::Db(e) => {
                desk_kit::error::classify_db_error(e)
            }
            NotificationError::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}

fn internal<E: Into<NotificationError>>(e: E) -> Status {
    e.into().into_status()
}

fn invalid(v: Vec<FieldViolation>) -> Result<(), Status> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(v).into())
    }
}

fn admin(c: &Caller) -> Result<(), Status> {
    if c.has_any(&[Role::Admin, Role::Manager]) {
        Ok(())
    } else {
        Err(
            ApiError::PermissionDenied("only admins and managers configure notifications".into())
                .into(),
        )
    }
}

fn parse_id(field: &str, text: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(text).map_err(|_| ApiError::invalid(field, "is not an id").into())
}

fn page(size: i32) -> u64 {
    match size {
        1..=500 => size as u64,
        _ => 100,
    }
}

fn stale() -> Status {
    ApiError::Aborted("the version is stale: read it again".into()).into()
}

pub struct NotificationApi {
    store: Arc<NotificationStore>,
    clock: SharedClock,
    feed: broadcast::Sender<FeedSignal>,
    wake: Arc<tokio::sync::Notify>,
    private_tenants: Vec<String>,
}

impl NotificationApi {
    pub fn new(
        store: Arc<NotificationStore>,
        clock: SharedClock,
        feed: broadcast::Sender<FeedSignal>,
        wake: Arc<tokio::sync::Notify>,
        private_tenants: Vec<String>,
    ) -> Self {
        Self {
            store,
            clock,
            feed,
            wake,
            private_tenants,
        }
    }

    /// The endpoint's URL, checked on its resolved addresses (again at every send).
    async fn check_url(&self, tenant: &str, e: &pb::WebhookEndpoint) -> Result<(), Status> {
        let mut v = Vec::new();
        let target = convert::parse_endpoint(e, &mut v);
        if let Some(target) = target {
            let allow = self.private_tenants.iter().any(|t| t == tenant);
            if let Err(why) = Http::resolve(&target, allow).await {
                v.push(FieldViolation::new("endpoint.url", why));
            }
        }
        invalid(v)
    }

    /// 32 bytes from the operating system's CSPRNG (two v4 UUIDs: `getrandom` underneath, 244
    /// random bits), without adding a `rand` line to the workspace.
    fn new_secret() -> Secret {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        Secret::from_key(key)
    }

    /// The tenant's rules, the defaults written out on the first change so they can be edited.
    async fn seed_rules(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        tenant: &str,
    ) -> Result<Vec<StoredRule>, Status> {
        let stored = self.store.rules(txn, tenant).await.map_err(internal)?;
        if !stored.is_empty() {
            return Ok(stored);
        }
        let mut seeded = Vec::new();
        for rule in default_rules() {
            let r = StoredRule {
                id: Uuid::now_v7(),
                version: 1,
                rule,
            };
            self.store
                .insert_rule(txn, tenant, &r)
                .await
                .map_err(internal)?;
            seeded.push(r);
        }
        Ok(seeded)
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<pb::StreamFeedResponse, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn create_rule(
        &self,
        request: Request<pb::CreateRuleRequest>,
    ) -> Result<Response<pb::CreateRuleResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let mut v = Vec::new();
        let rule = convert::parse_rule(request.into_inner().rule, &mut v);
        invalid(v)?;
        let txn = self.store.begin().await.map_err(internal)?;
        self.seed_rules(&txn, &c.tenant).await?;
        let stored = StoredRule {
            id: Uuid::now_v7(),
            version: 1,
            rule,
        };
        self.store
            .insert_rule(&*txn, &c.tenant, &stored)
            .await
            .map_err(internal)?;
        self.store.commit(txn).await.map_err(internal)?;
        Ok(Response::new(pb::CreateRuleResponse {
            rule: Some(convert::rule_pb(&stored)),
        }))
    }

    async fn update_rule(
        &self,
        request: Request<pb::UpdateRuleRequest>,
    ) -> Result<Response<pb::UpdateRuleResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let id_text = req.rule.as_ref().map(|r| r.id.clone()).unwrap_or_default();
        let mut v = Vec::new();
        let id = Uuid::parse_str(&id_text).ok();
        if id.is_none() {
            v.push(FieldViolation::new("rule.id", "is not an id"));
        }
        let rule = convert::parse_rule(req.rule, &mut v);
        invalid(v)?;
        let id = id.unwrap_or_default();
        let txn = self.store.begin().await.map_err(internal)?;
        let rules = self.seed_rules(&txn, &c.tenant).await?;
        let Some(current) = rules.iter().find(|r| r.id == id) else {
            return Err(ApiError::NotFound("no such rule".into()).into());
        };
        if current.version != req.expected_version {
            return Err(stale());
        }
        let mut rule = rule;
        rule.built_in = current.rule.built_in;
        let stored = StoredRule {
            id,
            version: current.version + 1,
            rule,
        };
        if !self
            .store
            .update_rule(&*txn, &c.tenant, &stored, current.version)
            .await
            .map_err(internal)?
        {
            return Err(stale());
        }
        self.store.commit(txn).await.map_err(internal)?;
        Ok(Response::new(pb::UpdateRuleResponse {
            rule: Some(convert::rule_pb(&stored)),
        }))
    }

    async fn delete_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        let txn = self.store.begin().await.map_err(internal)?;
        let rules = self.seed_rules(&txn, &c.tenant).await?;
        let Some(current) = rules.iter().find(|r| r.id == id) else {
            return Err(ApiError::NotFound("no such rule".into()).into());
        };
        if current.rule.built_in {
            return Err(ApiError::FailedPrecondition(
                "a built-in rule is disabled, not deleted".into(),
            )
            .into());
        }
        if !self
            .store
            .delete_rule(&*txn, &c.tenant, id, req.expected_version)
            .await
            .map_err(internal)?
        {
            return Err(stale());
        }
        self.store.commit(txn).await.map_err(internal)?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let stored = self
            .store
            .rules(self.store.db().connection(), &c.tenant)
            .await
            .map_err(internal)?;
        // Before the first change the defaults apply; they are shown as they would be written.
        let rules: Vec<pb::Rule> = if stored.is_empty() {
            default_rules()
                .into_iter()
                .map(|rule| {
                    convert::rule_pb(&StoredRule {
                        id: Uuid::nil(),
                        version: 0,
                        rule,
                    })
                })
                .collect()
        } else {
            stored.iter().map(convert::rule_pb).collect()
        };
        Ok(Response::new(pb::ListRulesResponse { rules }))
    }

    async fn put_template(
        &self,
        request: Request<pb::PutTemplateRequest>,
    ) -> Result<Response<pb::PutTemplateResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let mut v = Vec::new();
        let parsed = convert::parse_template(request.into_inner().template, &mut v);
        invalid(v)?;
        let Some((event_type, channel, locale, source)) = parsed else {
            return Err(ApiError::invalid("template", "is incomplete").into());
        };
        let conn = self.store.db().connection();
        let existing = self
            .store
            .templates(conn, &c.tenant, Some(&event_type))
            .await
            .map_err(internal)?;
        let previous = existing
            .iter()
            .find(|t| t.channel == channel && t.locale == locale);
        let stored = StoredTemplate {
            id: previous.map(|t| t.id).unwrap_or_else(Uuid::now_v7),
            event_type,
            channel,
            locale,
            version: previous.map(|t| t.version + 1).unwrap_or(1),
            source,
        };
        self.store
            .put_template(conn, &c.tenant, &stored)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::PutTemplateResponse {
            template: Some(convert::template_pb(&stored)),
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let filter = (!req.event_type.is_empty()).then_some(req.event_type.as_str());
        let templates = self
            .store
            .templates(self.store.db().connection(), &c.tenant, filter)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListTemplatesResponse {
            templates: templates.iter().map(convert::template_pb).collect(),
        }))
    }

    async fn preview_template(
        &self,
        request: Request<pb::PreviewTemplateRequest>,
    ) -> Result<Response<pb::PreviewTemplateResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let mut v = Vec::new();
        let channel = convert::channel(req.channel);
        if channel.is_none() {
            v.push(FieldViolation::new("channel", "is not a channel"));
        }
        let locale = if req.locale.is_empty() {
            TENANT_DEFAULT_LOCALE.to_owned()
        } else {
            match templates::canonical_locale(&req.locale) {
                Some(l) => l,
                None => {
                    v.push(FieldViolation::new("locale", "is not a BCP 47 locale"));
                    String::new()
                }
            }
        };
        invalid(v)?;
        let channel = channel.unwrap_or(crate::domain::rules::Channel::Email);
        let stored = self
            .store
            .templates(
                self.store.db().connection(),
                &c.tenant,
                Some(&req.event_type),
            )
            .await
            .map_err(internal)?;
        let Some((found, template)) = choose_template(&stored, &req.event_type, channel, &locale)
        else {
            return Err(ApiError::NotFound("no template for that event type".into()).into());
        };
        let sample = crate::events::notify::sample_variables(&found, &req.event_type);
        let rendered = templates::render(&template, &sample).map_err(|e| {
            Status::from(ApiError::FailedPrecondition(format!(
                "the template does not render: {e}"
            )))
        })?;
        Ok(Response::new(pb::PreviewTemplateResponse {
            subject: rendered.subject,
            text_body: rendered.text,
            html_body: rendered.html,
            locale: found,
        }))
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::GetPreferencesResponse>, Status> {
        let c = caller(&request)?;
        let req = request.into_inner();
        let person = if req.person_id.is_empty() {
            c.subject.clone()
        } else {
            req.person_id
        };
        if person != c.subject && !c.has_any(&[Role::Admin, Role::Manager]) {
            return Err(ApiError::NotFound("no such person".into()).into());
        }
        let prefs = self
            .store
            .preferences(self.store.db().connection(), &c.tenant, &person)
            .await
            .map_err(internal)?
            .unwrap_or(StoredPreferences {
                person_id: person,
                ..StoredPreferences::default()
            });
        Ok(Response::new(pb::GetPreferencesResponse {
            preferences: Some(convert::preferences_pb(&prefs)),
        }))
    }

    async fn set_preferences(
        &self,
        request: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::SetPreferencesResponse>, Status> {
        let c = caller(&request)?;
        let req = request.into_inner();
        let given = req.preferences.clone().unwrap_or_default();
        let person = if given.person_id.is_empty() {
            c.subject.clone()
        } else {
            given.person_id.clone()
        };
        if person != c.subject && !c.has_any(&[Role::Admin, Role::Manager]) {
            return Err(ApiError::NotFound("no such person".into()).into());
        }
        let mut v = Vec::new();
        let preferences = convert::parse_preferences(req.preferences, &mut v);
        invalid(v)?;
        let stored = StoredPreferences {
            person_id: person,
            version: given.version + 1,
            preferences,
        };
        let written = self
            .store
            .set_preferences(
                self.store.db().connection(),
                &c.tenant,
                &stored,
                given.version,
            )
            .await
            .map_err(internal)?;
        if !written {
            return Err(stale());
        }
        Ok(Response::new(pb::SetPreferencesResponse {
            preferences: Some(convert::preferences_pb(&stored)),
        }))
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let e = request.into_inner().endpoint.unwrap_or_default();
        self.check_url(&c.tenant, &e).await?;
        let endpoint = Endpoint {
            id: Uuid::now_v7(),
            url: e.url,
            event_types: e.event_types,
            exclude_actor_subjects: e.exclude_actor_subjects,
            enabled: e.enabled,
            version: 1,
            secrets: vec![EndpointSecret {
                secret: Self::new_secret().encoded(),
                expires_at: None,
            }],
        };
        let conn = self.store.db().connection();
        self.store
            .insert_endpoint(conn, &c.tenant, &endpoint)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::CreateWebhookEndpointResponse {
            endpoint: Some(convert::endpoint_pb(&endpoint, true)),
        }))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<pb::UpdateWebhookEndpointResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let e = req.endpoint.unwrap_or_default();
        let id = parse_id("endpoint.id", &e.id)?;
        self.check_url(&c.tenant, &e).await?;
        let conn = self.store.db().connection();
        let current = self
            .store
            .endpoints(conn, &c.tenant)
            .await
            .map_err(internal)?
            .into_iter()
            .find(|x| x.id == id);
        let Some(current) = current else {
            return Err(ApiError::NotFound("no such endpoint".into()).into());
        };
        if current.version != req.expected_version {
            return Err(stale());
        }
        let updated = Endpoint {
            url: e.url,
            event_types: e.event_types,
            exclude_actor_subjects: e.exclude_actor_subjects,
            enabled: e.enabled,
            version: current.version + 1,
            ..current.clone()
        };
        if !self
            .store
            .update_endpoint(conn, &c.tenant, &updated, current.version)
            .await
            .map_err(internal)?
        {
            return Err(stale());
        }
        Ok(Response::new(pb::UpdateWebhookEndpointResponse {
            endpoint: Some(convert::endpoint_pb(&updated, false)),
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let id = parse_id("id", &request.into_inner().id)?;
        if !self
            .store
            .delete_endpoint(self.store.db().connection(), &c.tenant, id)
            .await
            .map_err(internal)?
        {
            return Err(ApiError::NotFound("no such endpoint".into()).into());
        }
        Ok(Response::new(pb::DeleteWebhookEndpointResponse {}))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let endpoints = self
            .store
            .endpoints(self.store.db().connection(), &c.tenant)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints: endpoints
                .iter()
                .map(|e| convert::endpoint_pb(e, false))
                .collect(),
        }))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        if req.overlap_seconds < 0 || req.overlap_seconds > 30 * 86_400 {
            return Err(ApiError::invalid("overlap_seconds", "is between 0 and 30 days").into());
        }
        let overlap = if req.overlap_seconds == 0 {
            86_400
        } else {
            req.overlap_seconds
        };
        let conn = self.store.db().connection();
        let current = self
            .store
            .endpoints(conn, &c.tenant)
            .await
            .map_err(internal)?
            .into_iter()
            .find(|x| x.id == id);
        let Some(current) = current else {
            return Err(ApiError::NotFound("no such endpoint".into()).into());
        };
        let now = self.clock.now();
        let mut secrets = vec![EndpointSecret {
            secret: Self::new_secret().encoded(),
            expires_at: None,
        }];
        if let Some(previous) = current.secrets.first() {
            secrets.push(EndpointSecret {
                secret: previous.secret.clone(),
                expires_at: Some(now + chrono::Duration::seconds(overlap)),
            });
        }
        let rotated = Endpoint {
            secrets,
            version: current.version + 1,
            ..current.clone()
        };
        if !self
            .store
            .update_endpoint(conn, &c.tenant, &rotated, current.version)
            .await
            .map_err(internal)?
        {
            return Err(stale());
        }
        Ok(Response::new(pb::RotateWebhookSecretResponse {
            endpoint: Some(convert::endpoint_pb(&rotated, true)),
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let c = caller(&request)?;
        let req = request.into_inner();
        let given = [
            !req.ticket_id.is_empty(),
            !req.person_id.is_empty(),
            !req.endpoint_id.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::invalid(
                "ticket_id",
                "name exactly one of ticket_id, person_id and endpoint_id",
            )
            .into());
        }
        let filter = if !req.ticket_id.is_empty() {
            admin(&c).or_else(|_| {
                if c.has(Role::Agent) {
                    Ok(())
                } else {
                    Err(Status::from(ApiError::NotFound("no such ticket".into())))
                }
            })?;
            DeliveryFilter::Ticket(req.ticket_id)
        } else if !req.person_id.is_empty() {
            if req.person_id != c.subject {
                admin(&c).map_err(|_| Status::from(ApiError::NotFound("no such person".into())))?;
            }
            DeliveryFilter::Person(req.person_id)
        } else {
            admin(&c)?;
            DeliveryFilter::Endpoint(parse_id("endpoint_id", &req.endpoint_id)?)
        };
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(parse_id("page_token", &req.page_token)?)
        };
        let limit = page(req.page_size);
        let deliveries = self
            .store
            .deliveries(&c.tenant, &filter, before, limit)
            .await
            .map_err(internal)?;
        let next = if deliveries.len() as u64 == limit {
            deliveries
                .last()
                .map(|d| d.id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: deliveries.iter().map(convert::delivery_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let req = request.into_inner();
        let before = if req.page_token.is_empty() {
            None
        } else {
            Some(parse_id("page_token", &req.page_token)?)
        };
        let limit = page(req.page_size);
        let deliveries = self
            .store
            .deliveries(&c.tenant, &DeliveryFilter::Dead, before, limit)
            .await
            .map_err(internal)?;
        let next = if deliveries.len() as u64 == limit {
            deliveries
                .last()
                .map(|d| d.id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListDeadLettersResponse {
            deliveries: deliveries.iter().map(convert::delivery_pb).collect(),
            next_page_token: next,
        }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        let c = caller(&request)?;
        admin(&c)?;
        let id = parse_id("delivery_id", &request.into_inner().delivery_id)?;
        let conn = self.store.db().connection();
        let Some(mut d) = self
            .store
            .delivery(conn, &c.tenant, id)
            .await
            .map_err(internal)?
        else {
            return Err(ApiError::NotFound("no such delivery".into()).into());
        };
        if d.status != DeliveryStatus::Dead {
            return Err(
                ApiError::FailedPrecondition("only dead letters are replayed".into()).into(),
            );
        }
        // A fresh set of attempts; the log keeps the earlier ones.
        d.status = DeliveryStatus::Pending;
        d.due_at = self.clock.now();
        self.store
            .update_delivery(conn, &d)
            .await
            .map_err(internal)?;
        self.wake.notify_one();
        Ok(Response::new(pb::ReplayDeadLetterResponse {
            delivery: Some(convert::delivery_pb(&d)),
        }))
    }

    type StreamFeedStream = FeedStream;

    async fn stream_feed(
        &self,
        request: Request<pb::StreamFeedRequest>,
    ) -> Result<Response<Self::StreamFeedStream>, Status> {
        let c = caller(&request)?;
        let cursor = request.into_inner().cursor;
        if cursor < 0 {
            return Err(ApiError::invalid("cursor", "must not be negative").into());
        }
        let store = self.store.clone();
        let mut signals = self.feed.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut cursor = cursor;
            loop {
                // Read everything after the cursor, then wait for a signal (or poll: another
                // replica may have written the item).
                loop {
                    match store.feed_after(&c.tenant, &c.subject, cursor, 200).await {
                        Ok(items) if items.is_empty() => break,
                        Ok(items) => {
                            for item in items {
                                cursor = item.sequence;
                                let message = pb::StreamFeedResponse {
                                    item: Some(convert::feed_pb(&item)),
                                };
                                if tx.send(Ok(message)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(internal(e))).await;
                            return;
                        }
                    }
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    signal = signals.recv() => {
                        if let Err(broadcast::error::RecvError::Closed) = signal {
                            return;
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn mark_read(
        &self,
        request: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::MarkReadResponse>, Status> {
        let c = caller(&request)?;
        let req = request.into_inner();
        let mut v = Vec::new();
        let mut ids = Vec::new();
        for (i, id) in req.item_ids.iter().enumerate() {
            match Uuid::parse_str(id) {
                Ok(id) => ids.push(id),
                Err(_) => v.push(FieldViolation::new(
                    format!("item_ids[{i}]"),
                    "is not an id",
                )),
            }
        }
        invalid(v)?;
        let updated = self
            .store
            .mark_read(&c.tenant, &c.subject, &ids, req.read)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::MarkReadResponse {
            updated: updated as i32,
        }))
    }
}
