//! The tickets service's schema. One migration per struct, named by date; never edit a landed one,
//! add another. The migration table is `tickets_migrations`, so services can share a database.

use desk_kit::schema::{
    bigint, boolean, index, int, int_null, primary_key, text, text_null, time, time_null,
    unique_index, uuid as id,
};
use sea_orm_migration::{
    prelude::*,
    sea_orm::{DbBackend, DbErr},
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateTickets),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
            Box::new(CreateTicketWatchers),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("tickets_migrations").into_iden()
    }
}

struct CreateTickets;

impl MigrationName for CreateTickets {
    fn name(&self) -> &str {
        "m20261125_000010_create_tickets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTickets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("tickets"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("number"))
                    .col(text("ticket_type"))
                    .col(text("title"))
                    .col(text("description"))
                    .col(text("requester_id"))
                    .col(text("channel"))
                    .col(text_null("category"))
                    .col(text("impact"))
                    .col(text("urgency"))
                    .col(text("priority"))
                    .col(int("priority_rank"))
                    .col(text("status"))
                    .col(text_null("pending_reason"))
                    .col(text_null("assignment_group_id"))
                    .col(text_null("assignee_id"))
                    .col(text("tier"))
                    .col(text("affected_service_ids"))
                    .col(text("affected_ci_ids"))
                    .col(boolean("major_incident"))
                    .col(text("watcher_ids"))
                    .col(text_null("resolution_code"))
                    .col(text_null("resolution_notes"))
                    .col(text_null("resolved_by"))
                    .col(time_null("resolved_at"))
                    .col(text_null("root_cause"))
                    .col(text_null("workaround"))
                    .col(boolean("known_error"))
                    .col(int_null("csat_rating"))
                    .col(text_null("csat_comment"))
                    .col(time_null("rated_at"))
                    .col(bigint("version"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "tickets_tenant_number",
                "tickets",
                &["tenant_id", "number"],
            ))
            .await?;
        manager
            .create_index(index("tickets_tenant_id", "tickets", &["tenant_id", "id"]))
            .await?;
        manager
            .create_index(index(
                "tickets_tenant_requester",
                "tickets",
                &["tenant_id", "requester_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "tickets_tenant_group_status",
                "tickets",
                &["tenant_id", "assignment_group_id", "status"],
            ))
            .await?;
        manager
            .create_index(index(
                "tickets_tenant_assignee",
                "tickets",
                &["tenant_id", "assignee_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_comments"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(text("author_id"))
                    .col(text_null("author_name"))
                    .col(text("body"))
                    .col(text("visibility"))
                    .col(time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ticket_comments_ticket",
                "ticket_comments",
                &["ticket_id", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_worklog"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(text("agent_id"))
                    .col(int("minutes"))
                    .col(text("note"))
                    .col(time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ticket_worklog_ticket",
                "ticket_worklog",
                &["ticket_id", "created_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_links"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(text("kind"))
                    .col(text("target_id"))
                    .col(text_null("target_number"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "ticket_links_unique",
                "ticket_links",
                &["ticket_id", "kind", "target_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_history"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(bigint("version"))
                    .col(text("actor_id"))
                    .col(text_null("actor_name"))
                    .col(text("actor_roles"))
                    .col(text("action"))
                    .col(text("changes"))
                    .col(text_null("note"))
                    .col(time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ticket_history_ticket",
                "ticket_history",
                &["ticket_id", "version"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_settings"))
                    .if_not_exists()
                    .col(text("tenant_id").primary_key())
                    .col(text("priority_matrix"))
                    .col(int("reopen_window_hours"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_idempotency_keys"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(text("subject"))
                    .col(text("key"))
                    .col(text("request_hash"))
                    .col(id("ticket_id"))
                    .col(time("created_at"))
                    .primary_key(&mut primary_key(&["tenant_id", "subject", "key"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_counters"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(text("ticket_type"))
                    .col(bigint("last_value"))
                    .primary_key(&mut primary_key(&["tenant_id", "ticket_type"]))
                    .to_owned(),
            )
            .await
    }
}

/// Who watches which ticket, one row each, so a requester's list can find the tickets they watch
/// through an index; `tickets.watcher_ids` stays the list as the ticket shows it. Filled from
/// that column for tickets written before.
struct CreateTicketWatchers;

impl MigrationName for CreateTicketWatchers {
    fn name(&self) -> &str {
        "m20261210_000020_create_ticket_watchers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTicketWatchers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_watchers"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(text("watcher_id"))
                    .primary_key(&mut primary_key(&["ticket_id", "watcher_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ticket_watchers_tenant_watcher",
                "ticket_watchers",
                &["tenant_id", "watcher_id", "ticket_id"],
            ))
            .await?;
        // Each backend reads a JSON array its own way; sea-query builds neither.
        let backfill = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "INSERT INTO ticket_watchers (tenant_id, ticket_id, watcher_id) \
                 SELECT t.tenant_id, t.id, w.watcher_id FROM tickets t \
                 CROSS JOIN LATERAL json_array_elements_text(t.watcher_ids::json) AS w(watcher_id) \
                 ON CONFLICT DO NOTHING"
            }
            _ => {
                "INSERT OR IGNORE INTO ticket_watchers (tenant_id, ticket_id, watcher_id) \
                 SELECT t.tenant_id, t.id, w.value FROM tickets t, json_each(t.watcher_ids) AS w"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("ticket_watchers"))
                    .to_owned(),
            )
            .await
    }
}
