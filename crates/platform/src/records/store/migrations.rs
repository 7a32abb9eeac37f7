//! Migrations of the platform tables.

use sea_orm_migration::prelude::*;

use crate::records::audit::GENESIS_HASH;

/// Adds `column` to `table` (one column per statement: SQLite alters one at a time).
pub async fn add_column(m: &SchemaManager<'_>, table: impl IntoIden, column: ColumnDef) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).add_column(column).to_owned())
        .await
}

/// Drops `column` from `table`: the `down` of [`add_column`].
pub async fn drop_column(m: &SchemaManager<'_>, table: impl IntoIden, column: impl IntoIden) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

/// An index on `table` over the named columns, for the services' migrations.
pub fn index(name: &str, table: impl IntoIden, columns: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for column in columns {
        stmt.col(Alias::new(*column));
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

/// The platform migrations, in order; each service's migrator lists them first.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateIdempotencyRecords),
        Box::new(CreateAuditTrail),
        Box::new(AddAuditActorVia),
        Box::new(AddAuditScope),
        Box::new(CreateTransparencyLog),
        Box::new(IndexAuditByTrialAction),
        Box::new(CreateSignatures),
        Box::new(VacuumAuditQueueOften),
    ]
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    RequestId,
    Method,
    Fingerprint,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Sequence,
    OccurredAt,
    Actor,
    ActorRole,
    ActorSite,
    Action,
    EntityType,
    EntityId,
    OldValue,
    NewValue,
    Reason,
    RequestId,
    TraceId,
    PreviousHash,
    Hash,
    ActorVia,
    TrialId,
    SiteCode,
    LeafHash,
}

#[derive(DeriveIden)]
enum AuditPending {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuditTreeHashes {
    Table,
    StoredIndex,
    Hash,
}

#[derive(DeriveIden)]
enum AuditLogHead {
    Table,
    Id,
    TreeSize,
    RootHash,
    IntegratedAt,
}

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    TreeSize,
    RootHash,
    Note,
    SignedAt,
}

/// The audit trail becomes a transparency log: entries are written to `audit_pending` (no row
/// every write locks), the sequencer gives them positions in `audit_events` and keeps the Merkle
/// tree in `audit_tree_hashes` and its size and root in `audit_log_head`; signed checkpoints go to
/// `audit_checkpoints`. The hash-chained entries already written are checked and become the log's
/// first leaves (their chain hashes stay and are part of their leaves); the chain head goes.
struct CreateTransparencyLog;

impl MigrationName for CreateTransparencyLog {
    fn name(&self) -> &str {
        "m20261206_000001_platform_transparency_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTransparencyLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::records::store::schema::{instant, long_text, text};
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(ColumnDef::new(AuditEvents::LeafHash).string().not_null().default(""))
                    .to_owned(),
            )
            .await?;
        let mut queue = Table::create();
        queue.table(AuditPending::Table).col(
            ColumnDef::new(AuditPending::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        );
        queue.col(instant("occurred_at"));
        for column in [
            "actor",
            "actor_role",
            "actor_site",
            "actor_via",
            "action",
            "entity_type",
            "entity_id",
        ] {
            queue.col(text(column));
        }
        for column in ["old_value", "new_value", "reason"] {
            queue.col(long_text(column));
        }
        for column in ["request_id", "trace_id", "trial_id", "site_code"] {
            queue.col(text(column));
        }
        manager.create_table(queue.to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditTreeHashes::Table)
                    .col(
                        ColumnDef::new(AuditTreeHashes::StoredIndex)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditTreeHashes::Hash).blob().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLogHead::Table)
                    .col(ColumnDef::new(AuditLogHead::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditLogHead::TreeSize).big_integer().not_null())
                    .col(ColumnDef::new(AuditLogHead::RootHash).string_len(64).not_null())
                    .col(
                        ColumnDef::new(AuditLogHead::IntegratedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditCheckpoints::Table)
                    .col(
                        ColumnDef::new(AuditCheckpoints::TreeSize)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditCheckpoints::RootHash).string_len(64).not_null())
                    .col(ColumnDef::new(AuditCheckpoints::Note).text().not_null())
                    .col(
                        ColumnDef::new(AuditCheckpoints::SignedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditLogHead::Table)
                    .columns([
                        AuditLogHead::Id,
                        AuditLogHead::TreeSize,
                        AuditLogHead::RootHash,
                        AuditLogHead::IntegratedAt,
                    ])
                    .values_panic([
                        1.into(),
                        0i64.into(),
                        crate::records::log::hex_of(&tlog_tiles::EMPTY_HASH).into(),
                        chrono::Utc::now().into(),
                    ])
                    .to_owned(),
            )
            .await?;
        let adopted = crate::records::log::adopt_chained_entries(manager.get_connection())
            .await
            .map_err(|e| DbErr::Migration(format!("{e:#}")))?;
        if adopted > 0 {
            tracing::info!(
                entries = adopted,
                "hash-chained audit entries moved into the transparency log"
            );
        }
        manager
            .drop_table(Table::drop().table(AuditChainHead::Table).to_owned())
            .await
    }
}

/// An index over a trial's entries of one action in log order: the histories a service reads
/// back from its trail (a subject's status changes) without scanning other trials' entries.
struct IndexAuditByTrialAction;

impl MigrationName for IndexAuditByTrialAction {
    fn name(&self) -> &str {
        "m20261207_000001_platform_audit_by_trial_action"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexAuditByTrialAction {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "audit_events_by_trial_action",
                AuditEvents::Table,
                &["trial_id", "action", "sequence"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("audit_events_by_trial_action")
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await
    }
}

/// `audit_pending` is a queue: every write inserts into it and the sequencer deletes what it
/// integrated. On PostgreSQL the deleted rows stay until a vacuum, and every integration pass
/// (each `ListAuditEvents` runs one) walks them: after a million entries, 7 ms a pass instead of
/// 0.5. PostgreSQL vacuums a table once a fifth of it is dead; the queue is vacuumed after a
/// thousand dead rows whatever its size. SQLite reuses deleted rows' space: nothing to do.
struct VacuumAuditQueueOften;

impl MigrationName for VacuumAuditQueueOften {
    fn name(&self) -> &str {
        "m20261207_000003_platform_vacuum_audit_queue_often"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for VacuumAuditQueueOften {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE audit_pending SET (autovacuum_vacuum_scale_factor = 0, \
                 autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0, \
                 autovacuum_vacuum_insert_threshold = 1000)",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE audit_pending RESET (autovacuum_vacuum_scale_factor, \
                 autovacuum_vacuum_threshold, autovacuum_vacuum_insert_scale_factor, \
                 autovacuum_vacuum_insert_threshold)",
            )
            .await
            .map(|_| ())
    }
}

/// Electronic signatures, read by record.
struct CreateSignatures;

impl MigrationName for CreateSignatures {
    fn name(&self) -> &str {
        "m20261207_000002_platform_signatures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSignatures {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::records::store::schema::{instant, key, table, text};
        let mut columns = vec![key("signature_id")];
        for name in [
            "record_type",
            "record_id",
            "trial_id",
            "site_code",
            "signer",
            "printed_name",
            "signer_role",
            "signer_site",
            "meaning",
        ] {
            columns.push(text(name));
        }
        columns.extend([
            instant("signed_at"),
            instant("authenticated_at"),
            text("content_sha256"),
        ]);
        manager.create_table(table("signatures", columns)).await?;
        manager
            .create_index(index(
                "signatures_by_record",
                Alias::new("signatures"),
                &["record_type", "record_id", "signed_at"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("signatures")).to_owned())
            .await
    }
}

/// Adds the trial and the site of the changed record to the audit trail, so WatchEvents can
/// filter by them and keep a site's records from other sites; existing entries get "" (they
/// reach only callers who see every site).
struct AddAuditScope;

impl MigrationName for AddAuditScope {
    fn name(&self) -> &str {
        "m20261201_000001_platform_audit_scope"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddAuditScope {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for column in [AuditEvents::TrialId, AuditEvents::SiteCode] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .add_column(ColumnDef::new(column).string().not_null().default(""))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [AuditEvents::SiteCode, AuditEvents::TrialId] {
            manager
                .alter_table(Table::alter().table(AuditEvents::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Adds the system that carried a call (mutual TLS) to the audit trail; existing entries get "".
struct AddAuditActorVia;

impl MigrationName for AddAuditActorVia {
    fn name(&self) -> &str {
        "m20261127_000001_platform_audit_actor_via"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddAuditActorVia {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(ColumnDef::new(AuditEvents::ActorVia).string().not_null().default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .drop_column(AuditEvents::ActorVia)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AuditChainHead {
    Table,
    Id,
    LastSequence,
    LastHash,
}

struct CreateIdempotencyRecords;

impl MigrationName for CreateIdempotencyRecords {
    fn name(&self) -> &str {
        "m20261126_000001_platform_idempotency_records"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdempotencyRecords {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .col(
                        ColumnDef::new(IdempotencyRecords::RequestId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(IdempotencyRecords::Method).string().not_null())
                    .col(
                        ColumnDef::new(IdempotencyRecords::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyRecords::Response).blob().null())
                    .col(
                        ColumnDef::new(IdempotencyRecords::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateAuditTrail;

impl MigrationName for CreateAuditTrail {
    fn name(&self) -> &str {
        "m20261126_000002_platform_audit_trail"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditTrail {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Sequence)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::Actor).string().not_null())
                    .col(ColumnDef::new(AuditEvents::ActorRole).string().not_null())
                    .col(ColumnDef::new(AuditEvents::ActorSite).string().not_null())
                    .col(ColumnDef::new(AuditEvents::Action).string().not_null())
                    .col(ColumnDef::new(AuditEvents::EntityType).string().not_null())
                    .col(ColumnDef::new(AuditEvents::EntityId).string().not_null())
                    .col(ColumnDef::new(AuditEvents::OldValue).text().not_null())
                    .col(ColumnDef::new(AuditEvents::NewValue).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Reason).text().not_null())
                    .col(ColumnDef::new(AuditEvents::RequestId).string_len(36).not_null())
                    .col(ColumnDef::new(AuditEvents::TraceId).string_len(32).not_null())
                    .col(ColumnDef::new(AuditEvents::PreviousHash).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::Hash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        // ListAuditEvents filters by record, in sequence order.
        manager
            .create_index(
                Index::create()
                    .name("audit_events_by_entity")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::EntityType)
                    .col(AuditEvents::EntityId)
                    .col(AuditEvents::Sequence)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditChainHead::Table)
                    .col(ColumnDef::new(AuditChainHead::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AuditChainHead::LastSequence).big_integer().not_null())
                    .col(ColumnDef::new(AuditChainHead::LastHash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditChainHead::Table)
                    .columns([
                        AuditChainHead::Id,
                        AuditChainHead::LastSequence,
                        AuditChainHead::LastHash,
                    ])
                    .values_panic([1.into(), 0i64.into(), GENESIS_HASH.into()])
                    .to_owned(),
            )
            .await
    }
}
