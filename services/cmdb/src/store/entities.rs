//! sea-orm entities of the CMDB, one module per table. Attribute maps are JSON objects; the
//! `ci_attributes` table repeats each attribute as text so filters and identification rules can
//! find CIs by value on both PostgreSQL and SQLite.

pub mod ci {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cis")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub name: String,
        pub class: String,
        pub status: String,
        pub environment: String,
        pub owner_group_id: Option<String>,
        pub criticality: String,
        pub location: Option<String>,
        pub region: Option<String>,
        /// JSON object: attribute name → value.
        pub attributes: String,
        /// JSON object: attribute name → `{source, actor, set_at}`.
        pub provenance: String,
        pub version: i64,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ci_attribute {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ci_attributes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ci_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub tenant_id: String,
        pub class: String,
        /// The value as text, the same rendering the identification keys use.
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod relationship {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ci_relationships")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub source_id: Uuid,
        pub rel_type: String,
        pub target_id: Uuid,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        /// Relationships are ended, not deleted: history stays readable.
        pub removed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ci_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub ci_id: Uuid,
        pub version: i64,
        pub actor_id: String,
        pub actor_roles: String,
        /// `api` or the discovery source.
        pub source: String,
        pub action: String,
        /// JSON array of `{field, old, new}`.
        pub changes: String,
        pub note: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod class {
    use sea_orm::entity::prelude::*;

    /// Tenant-defined classes; the built-in ones live in the domain.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cmdb_classes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The class definition as JSON.
        pub definition: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod import {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cmdb_imports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub source: String,
        pub state: String,
        /// The batch as submitted (protobuf, base64) so commit can plan it again.
        pub request: String,
        /// The plan as the caller previewed it (protobuf, base64).
        pub plan: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod settings {
    use sea_orm::entity::prelude::*;

    /// Per-tenant CMDB settings.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cmdb_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        /// `desk.cmdb.v1.SourcePrecedence`, protobuf in base64.
        pub source_precedence: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
