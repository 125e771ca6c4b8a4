//! The SLA service's schema. One migration per file-level struct, named by date; never edit a
//! landed one, add another. The migration table is `sla_migrations`, so services can share a
//! database.
//!
//! Records always read whole (a calendar, a policy, a ticket's history) are JSON in `record`;
//! the columns beside them are what queries filter and order on.

use desk_kit::schema::{
    bigint, boolean, index, primary_key, text, text_null, time, time_null, uuid as id,
};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateSlaTables),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("sla_migrations").into_iden()
    }
}

fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .to_owned()
}

struct CreateSlaTables;

impl MigrationName for CreateSlaTables {
    fn name(&self) -> &str {
        "m20261204_000010_create_sla_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSlaTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["sla_calendars", "sla_policies"] {
            manager
                .create_table(
                    table(name)
                        .col(id("id").primary_key())
                        .col(text("tenant_id"))
                        .col(bigint("version"))
                        .col(time("created_at"))
                        .col(text("record"))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(index(
                    &format!("{name}_tenant"),
                    name,
                    &["tenant_id", "created_at"],
                ))
                .await?;
        }
        // One row per ticket: its history (every event reduced to a snapshot) and the policies
        // pinned when it was first seen.
        manager
            .create_table(
                table("sla_tickets")
                    .col(text("tenant_id"))
                    .col(text("ticket_id"))
                    .col(time("created_at"))
                    .col(boolean("open"))
                    .col(text_null("team_id"))
                    .col(text("record"))
                    .primary_key(&mut primary_key(&["tenant_id", "ticket_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sla_tickets_created",
                "sla_tickets",
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "sla_tickets_open",
                "sla_tickets",
                &["tenant_id", "open"],
            ))
            .await?;
        // Each clock's last fold: what lists filter on, and the transitions already published.
        manager
            .create_table(
                table("sla_clocks")
                    .col(text("tenant_id"))
                    .col(text("ticket_id"))
                    .col(id("policy_id"))
                    .col(text("metric"))
                    .col(text("kind"))
                    .col(text("state"))
                    .col(time_null("due_at"))
                    .col(text_null("team_id"))
                    .col(text("published"))
                    .col(time("updated_at"))
                    .primary_key(&mut primary_key(&[
                        "tenant_id",
                        "ticket_id",
                        "policy_id",
                        "metric",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sla_clocks_due",
                "sla_clocks",
                &["tenant_id", "state", "due_at"],
            ))
            .await?;
        // The durable timer: one per ticket, at the next instant one of its clocks warns or
        // breaches. The worker takes due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL.
        manager
            .create_table(
                table("sla_timers")
                    .col(text("tenant_id"))
                    .col(text("ticket_id"))
                    .col(time("fire_at"))
                    .primary_key(&mut primary_key(&["tenant_id", "ticket_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("sla_timers_fire_at", "sla_timers", &["fire_at"]))
            .await?;
        // The directory's teams, projected: which calendar each names.
        manager
            .create_table(
                table("sla_teams")
                    .col(text("tenant_id"))
                    .col(text("team_id"))
                    .col(text_null("calendar_id"))
                    .col(text("region"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "team_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(crate::store::IDEMPOTENCY_KEYS.create_table())
            .await?;
        Ok(())
    }
}
