//! The catalog's schema. One migration per struct, named by date; never edit a landed one, add
//! another. The migration table is `catalog_migrations`, so services can share a database.
//!
//! Offerings and requests are kept whole as JSON (`record`; they are always read whole); the
//! columns beside them are what queries filter on. `catalog_approvers` and `catalog_tasks` are
//! rewritten with their request in the same transaction: who an approval waits for, and the
//! tasks a team or a robot lists. `catalog_people` and `catalog_memberships` are the directory's
//! events projected: requesters' managers and teams' members.

use desk_kit::schema::{
    bigint, boolean, index, primary_key, text, time, time_null, unique_index, uuid as id,
};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateCatalog),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("catalog_migrations").into_iden()
    }
}

fn table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .to_owned()
}

struct CreateCatalog;

impl MigrationName for CreateCatalog {
    fn name(&self) -> &str {
        "m20261204_000010_create_catalog"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCatalog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table("catalog_offerings")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(bigint("version"))
                    .col(text("category"))
                    .col(boolean("active"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_offerings_tenant",
                "catalog_offerings",
                &["tenant_id", "category"],
            ))
            .await?;
        manager
            .create_table(
                table("catalog_offering_versions")
                    .col(text("tenant_id"))
                    .col(id("offering_id"))
                    .col(bigint("version"))
                    .col(text("record"))
                    .primary_key(&mut primary_key(&["offering_id", "version"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table("catalog_requests")
                    .col(id("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("number"))
                    .col(id("offering_id"))
                    .col(text("requester"))
                    .col(text("state"))
                    .col(time_null("timer_at"))
                    .col(bigint("version"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .col(text("record"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "catalog_requests_number",
                "catalog_requests",
                &["tenant_id", "number"],
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_requests_requester",
                "catalog_requests",
                &["tenant_id", "requester", "id"],
            ))
            .await?;
        // Popularity is counted, not kept on the offering: a hot counter row would serialize
        // every submission of a popular offering.
        manager
            .create_index(index(
                "catalog_requests_offering",
                "catalog_requests",
                &["tenant_id", "offering_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_requests_timer",
                "catalog_requests",
                &["timer_at"],
            ))
            .await?;

        manager
            .create_table(
                table("catalog_approvers")
                    .col(text("tenant_id"))
                    .col(id("request_id"))
                    .col(text("subject"))
                    .primary_key(&mut primary_key(&["request_id", "subject"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_approvers_subject",
                "catalog_approvers",
                &["tenant_id", "subject"],
            ))
            .await?;

        manager
            .create_table(
                table("catalog_tasks")
                    .col(text("tenant_id"))
                    .col(id("request_id"))
                    .col(text("task_key"))
                    .col(text("group_id"))
                    .col(boolean("automated"))
                    .col(text("state"))
                    .primary_key(&mut primary_key(&["request_id", "task_key"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_tasks_group",
                "catalog_tasks",
                &["tenant_id", "group_id", "state"],
            ))
            .await?;

        manager
            .create_table(
                table("catalog_delegations")
                    .col(text("tenant_id"))
                    .col(text("from_subject"))
                    .col(text("to_subject"))
                    .col(time("start_at"))
                    .col(time("end_at"))
                    .primary_key(&mut primary_key(&["tenant_id", "from_subject"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_delegations_to",
                "catalog_delegations",
                &["tenant_id", "to_subject"],
            ))
            .await?;

        manager
            .create_table(
                table("catalog_counters")
                    .col(text("tenant_id").primary_key())
                    .col(bigint("last_value"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                table("catalog_people")
                    .col(text("tenant_id"))
                    .col(text("person_id"))
                    .col(text("subject"))
                    .col(text("manager_id"))
                    .col(boolean("active"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "person_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_people_subject",
                "catalog_people",
                &["tenant_id", "subject"],
            ))
            .await?;
        manager
            .create_table(
                table("catalog_memberships")
                    .col(text("tenant_id"))
                    .col(text("team_id"))
                    .col(text("person_id"))
                    .col(boolean("active"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "team_id", "person_id"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(crate::store::IDEMPOTENCY_KEYS.create_table())
            .await?;
        Ok(())
    }
}
