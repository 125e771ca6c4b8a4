//! The change service's schema. One migration per struct, named by date; never edit a landed
//! one, add another. The migration table is `change_migrations`, so services can share a
//! database.
//!
//! A change is kept whole as JSON in `change_changes.record` (it is always read whole); the
//! columns beside it are what queries filter and order on. The CMDB projection tables hold
//! what the CMDB's events said, so the in-memory graph is rebuilt at start without the CMDB.

use desk_kit::schema::{
    bigint, boolean, index, primary_key, text, text_null, time, time_null, unique_index, uuid as id,
};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateChanges),
            Box::new(CreateCmdbProjection),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("change_migrations").into_iden()
    }
}

fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .to_owned()
}

struct CreateChanges;

impl MigrationName for CreateChanges {
    fn name(&self) -> &str {
        "m20261203_000010_create_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateChanges {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table("change_changes")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("number"))
                    .col(text("change_type"))
                    .col(text("state"))
                    .col(time_null("planned_start"))
                    .col(time_null("planned_end"))
                    .col(text_null("implementer_id"))
                    .col(text_null("assignment_group_id"))
                    .col(text_null("outcome"))
                    .col(time_null("implement_ended_at"))
                    .col(bigint("version"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "change_changes_number",
                "change_changes",
                &["tenant_id", "number"],
            ))
            .await?;
        // Overlapping windows: planned_start within [start - MAX_WINDOW, end).
        manager
            .create_index(index(
                "change_changes_window",
                "change_changes",
                &["tenant_id", "planned_start"],
            ))
            .await?;
        manager
            .create_index(index(
                "change_changes_created",
                "change_changes",
                &["tenant_id", "created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "change_changes_implemented",
                "change_changes",
                &["tenant_id", "implement_ended_at"],
            ))
            .await?;

        // The affected CIs again as rows: changes by CI (failure history, suspected incidents).
        manager
            .create_table(
                table("change_affected_cis")
                    .col(text("tenant_id"))
                    .col(id("change_id"))
                    .col(id("ci_id"))
                    .primary_key(&mut primary_key(&["change_id", "ci_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "change_affected_cis_ci",
                "change_affected_cis",
                &["tenant_id", "ci_id"],
            ))
            .await?;

        manager
            .create_table(
                table("change_counters")
                    .col(text("tenant_id").primary_key())
                    .col(bigint("last_value"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table("change_history")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(id("change_id"))
                    .col(bigint("version"))
                    .col(text("actor_id"))
                    .col(text("actor_name"))
                    .col(text("actor_roles"))
                    .col(text("action"))
                    .col(text("changes"))
                    .col(text("note"))
                    .col(time("at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "change_history_change",
                "change_history",
                &["tenant_id", "change_id", "version"],
            ))
            .await?;

        for name in [
            "change_templates",
            "change_freeze_windows",
            "change_maintenance_windows",
        ] {
            manager
                .create_table(
                    table(name)
                        .col(id("id").primary_key())
                        .col(text("tenant_id"))
                        .col(time_null("starts_at"))
                        .col(time_null("ends_at"))
                        .col(time("created_at"))
                        .col(text("record"))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(index(
                    &format!("{name}_tenant"),
                    name,
                    &["tenant_id", "starts_at"],
                ))
                .await?;
        }

        manager
            .create_table(
                table("change_policies")
                    .col(text("tenant_id").primary_key())
                    .col(bigint("version"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table("change_delegations")
                    .col(text("tenant_id"))
                    .col(text("member_id"))
                    .col(text("delegate_id"))
                    .col(time("until"))
                    .primary_key(&mut primary_key(&["tenant_id", "member_id", "delegate_id"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(crate::store::IDEMPOTENCY_KEYS.create_table())
            .await?;
        Ok(())
    }
}

struct CreateCmdbProjection;

impl MigrationName for CreateCmdbProjection {
    fn name(&self) -> &str {
        "m20261203_000020_create_cmdb_projection"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCmdbProjection {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table("change_cmdb_cis")
                    .col(text("tenant_id"))
                    .col(id("ci_id"))
                    .col(text("name"))
                    .col(text("class"))
                    .col(text("criticality"))
                    .col(boolean("retired"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "ci_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table("change_cmdb_relationships")
                    .col(text("tenant_id"))
                    .col(id("relationship_id"))
                    .col(id("source_id"))
                    .col(text("relation"))
                    .col(id("target_id"))
                    .primary_key(&mut primary_key(&["tenant_id", "relationship_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                table("change_cmdb_classes")
                    .col(text("tenant_id"))
                    .col(text("name"))
                    .col(text("parent"))
                    .primary_key(&mut primary_key(&["tenant_id", "name"]))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
