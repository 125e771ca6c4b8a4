//! The CMDB's schema. One migration per struct, named by date; never edit a landed one, add
//! another. The migration table is `cmdb_migrations`, so services can share a database.

use desk_kit::schema::{bigint, index, primary_key, text, text_null, time, time_null, uuid};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            desk_kit::events::migrations::inbox_migration(crate::SERVICE),
            Box::new(CreateCmdb),
            Box::new(CreateIdempotencyKeys),
            Box::new(CreateSettings),
            Box::new(IndexCisByName),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("cmdb_migrations").into_iden()
    }
}

struct CreateCmdb;

impl MigrationName for CreateCmdb {
    fn name(&self) -> &str {
        "m20261125_000010_create_cmdb"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCmdb {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cis"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("name"))
                    .col(text("class"))
                    .col(text("status"))
                    .col(text("environment"))
                    .col(text_null("owner_group_id"))
                    .col(text("criticality"))
                    .col(text_null("location"))
                    .col(text_null("region"))
                    .col(text("attributes"))
                    .col(text("provenance"))
                    .col(bigint("version"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "cis_tenant_class",
                "cis",
                &["tenant_id", "class", "id"],
            ))
            .await?;
        manager
            .create_index(index("cis_tenant_id", "cis", &["tenant_id", "id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ci_attributes"))
                    .if_not_exists()
                    .col(uuid("ci_id"))
                    .col(text("name"))
                    .col(text("tenant_id"))
                    .col(text("class"))
                    .col(text("value"))
                    .primary_key(&mut primary_key(&["ci_id", "name"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ci_attributes_lookup",
                "ci_attributes",
                &["tenant_id", "name", "value"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ci_relationships"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(uuid("source_id"))
                    .col(text("rel_type"))
                    .col(uuid("target_id"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time_null("removed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ci_relationships_source",
                "ci_relationships",
                &["tenant_id", "source_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ci_relationships_target",
                "ci_relationships",
                &["tenant_id", "target_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("ci_history"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(uuid("ci_id"))
                    .col(bigint("version"))
                    .col(text("actor_id"))
                    .col(text("actor_roles"))
                    .col(text("source"))
                    .col(text("action"))
                    .col(text("changes"))
                    .col(text_null("note"))
                    .col(time("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ci_history_ci", "ci_history", &["ci_id", "version"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cmdb_classes"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(text("name"))
                    .col(text("definition"))
                    .col(time("created_at"))
                    .primary_key(&mut primary_key(&["tenant_id", "name"]))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cmdb_imports"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("source"))
                    .col(text("state"))
                    .col(text("request"))
                    .col(text("plan"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "cmdb_imports_tenant",
                "cmdb_imports",
                &["tenant_id", "id"],
            ))
            .await
    }
}

struct CreateIdempotencyKeys;

impl MigrationName for CreateIdempotencyKeys {
    fn name(&self) -> &str {
        "m20261125_000011_create_cmdb_idempotency_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdempotencyKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cmdb_idempotency_keys"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(text("subject"))
                    .col(text("key"))
                    .col(text("request_hash"))
                    .col(uuid("ci_id"))
                    .col(time("created_at"))
                    .primary_key(&mut primary_key(&["tenant_id", "subject", "key"]))
                    .to_owned(),
            )
            .await
    }
}

struct CreateSettings;

impl MigrationName for CreateSettings {
    fn name(&self) -> &str {
        "m20261125_000012_create_cmdb_settings"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSettings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("cmdb_settings"))
                    .if_not_exists()
                    .col(text("tenant_id").primary_key())
                    .col(text("source_precedence"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await
    }
}

/// Identification by name (`name`, `name_environment`, `name_on_host` rules) and the bulk
/// lookups of an import batch find CIs by name; without this index each lookup read every CI of
/// the class.
struct IndexCisByName;

impl MigrationName for IndexCisByName {
    fn name(&self) -> &str {
        "m20261201_000013_index_cis_by_name"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexCisByName {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("cis_tenant_name", "cis", &["tenant_id", "name"]))
            .await
    }
}
