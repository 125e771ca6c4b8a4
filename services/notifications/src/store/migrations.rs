//! The notifications schema. One migration per struct, named by date; never edit a landed one,
//! add another. The migration table is `notifications_migrations`, so services can share a
//! database. Aggregates are kept whole as JSON in `record`; the columns beside it are what
//! queries filter and order on.

use desk_kit::schema::{
    bigint, index, int, primary_key, text, text_null, time, unique_index, uuid as id,
};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateNotifications),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("notifications_migrations").into_iden()
    }
}

fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .to_owned()
}

struct CreateNotifications;

impl MigrationName for CreateNotifications {
    fn name(&self) -> &str {
        "m20261204_000010_create_notifications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateNotifications {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rules, templates and endpoints: one row per aggregate.
        for name in ["notifications_rules", "notifications_endpoints"] {
            manager
                .create_table(
                    table(name)
                        .col(id("id").primary_key())
                        .col(text("tenant_id"))
                        .col(bigint("version"))
                        .col(text("record"))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(index(&format!("{name}_tenant"), name, &["tenant_id"]))
                .await?;
        }
        manager
            .create_table(
                table("notifications_templates")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("event_type"))
                    .col(text("channel"))
                    .col(text("locale"))
                    .col(bigint("version"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "notifications_templates_key",
                "notifications_templates",
                &["tenant_id", "event_type", "channel", "locale"],
            ))
            .await?;
        // Keyed by person: preferences, the directory's people, feed counters.
        for name in ["notifications_preferences", "notifications_people"] {
            manager
                .create_table(
                    table(name)
                        .col(text("tenant_id"))
                        .col(text("person_id"))
                        .col(bigint("version"))
                        .col(text("record"))
                        .primary_key(&mut primary_key(&["tenant_id", "person_id"]))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                table("notifications_teams")
                    .col(text("tenant_id"))
                    .col(text("team_id"))
                    .col(text_null("manager_id"))
                    .col(text("name"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "team_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table("notifications_members")
                    .col(text("tenant_id"))
                    .col(text("team_id"))
                    .col(text("person_id"))
                    .col(bigint("version"))
                    .col(int("active"))
                    .primary_key(&mut primary_key(&["tenant_id", "team_id", "person_id"]))
                    .to_owned(),
            )
            .await?;
        // The last ticket snapshot, for events that carry only the ticket's id (comments).
        manager
            .create_table(
                table("notifications_tickets")
                    .col(text("tenant_id"))
                    .col(text("ticket_id"))
                    .col(bigint("version"))
                    .col(text("record"))
                    .primary_key(&mut primary_key(&["tenant_id", "ticket_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table("notifications_deliveries")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("channel"))
                    .col(text("status"))
                    .col(text_null("person_id"))
                    .col(text_null("endpoint_id"))
                    .col(text_null("ticket_id"))
                    .col(text("aggregate"))
                    .col(text_null("coalesce_key"))
                    .col(time("due_at"))
                    .col(time("claimed_until"))
                    .col(time("created_at"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("due", &["status", "due_at"][..]),
            ("ticket", &["tenant_id", "ticket_id"][..]),
            ("person", &["tenant_id", "person_id"][..]),
            ("endpoint", &["tenant_id", "endpoint_id", "aggregate"][..]),
            ("coalesce", &["tenant_id", "coalesce_key", "status"][..]),
        ] {
            manager
                .create_index(index(
                    &format!("notifications_deliveries_{name}"),
                    "notifications_deliveries",
                    columns,
                ))
                .await?;
        }
        manager
            .create_table(
                table("notifications_feed")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("person_id"))
                    .col(bigint("sequence"))
                    .col(int("read"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "notifications_feed_cursor",
                "notifications_feed",
                &["tenant_id", "person_id", "sequence"],
            ))
            .await?;
        manager
            .create_table(
                table("notifications_feed_counters")
                    .col(text("tenant_id"))
                    .col(text("person_id"))
                    .col(bigint("last_value"))
                    .primary_key(&mut primary_key(&["tenant_id", "person_id"]))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
