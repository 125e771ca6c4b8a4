//! The tickets service's schema. One migration per struct, named by date; never edit a landed one,
//! add another. The migration table is `tickets_migrations`, so services can share a database.

use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateTickets),
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

fn id(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .uuid()
        .not_null()
        .to_owned()
}
fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}
fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}
fn time(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}
fn time_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}
fn index(name: &str, table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(Alias::new(table));
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
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
                    .col(
                        ColumnDef::new(Alias::new("priority_rank"))
                            .integer()
                            .not_null(),
                    )
                    .col(text("status"))
                    .col(text_null("pending_reason"))
                    .col(text_null("assignment_group_id"))
                    .col(text_null("assignee_id"))
                    .col(text("tier"))
                    .col(text("affected_service_ids"))
                    .col(text("affected_ci_ids"))
                    .col(
                        ColumnDef::new(Alias::new("major_incident"))
                            .boolean()
                            .not_null(),
                    )
                    .col(text("watcher_ids"))
                    .col(text_null("resolution_code"))
                    .col(text_null("resolution_notes"))
                    .col(text_null("resolved_by"))
                    .col(time_null("resolved_at"))
                    .col(text_null("root_cause"))
                    .col(text_null("workaround"))
                    .col(
                        ColumnDef::new(Alias::new("known_error"))
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Alias::new("csat_rating")).integer().null())
                    .col(text_null("csat_comment"))
                    .col(time_null("rated_at"))
                    .col(
                        ColumnDef::new(Alias::new("version"))
                            .big_integer()
                            .not_null(),
                    )
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;
        let mut unique_number = index("tickets_tenant_number", "tickets", &["tenant_id", "number"]);
        manager
            .create_index(unique_number.unique().to_owned())
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
                    .col(ColumnDef::new(Alias::new("minutes")).integer().not_null())
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
        let mut unique_link = index(
            "ticket_links_unique",
            "ticket_links",
            &["ticket_id", "kind", "target_id"],
        );
        manager
            .create_index(unique_link.unique().to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ticket_history"))
                    .if_not_exists()
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("ticket_id"))
                    .col(
                        ColumnDef::new(Alias::new("version"))
                            .big_integer()
                            .not_null(),
                    )
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
                    .col(
                        ColumnDef::new(Alias::new("reopen_window_hours"))
                            .integer()
                            .not_null(),
                    )
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
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("subject"))
                            .col(Alias::new("key")),
                    )
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
                    .col(
                        ColumnDef::new(Alias::new("last_value"))
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("ticket_type")),
                    )
                    .to_owned(),
            )
            .await
    }
}
