//! Database connection and migrations: an embedded SQLite file per service by default (WAL,
//! `synchronous=FULL` so a committed clinical record survives a power cut), PostgreSQL by URL.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::error::AppError;
use crate::settings::{MigrateOnStart, Settings};

/// The database URL of `service`: the configured one, or `<data_dir>/<service>.db`.
pub fn database_url(settings: &Settings, service: &str) -> String {
    settings.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            settings.data_dir.join(format!("{service}.db")).display()
        )
    })
}

/// Opens the connection pool of `service`, creating the data folder for SQLite.
pub async fn connect(settings: &Settings, service: &str) -> anyhow::Result<DatabaseConnection> {
    let url = database_url(settings, service);
    if settings.database_url.is_none() {
        crate::private_files::create_dir(&settings.data_dir)?;
        crate::private_files::prepare_sqlite_file(&settings.data_dir.join(format!("{service}.db")))?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database_max_connections)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the {service} database: {e}"))
}

/// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at
/// the start, so concurrent writers queue (busy timeout) instead of failing at their first write.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, AppError> {
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    Ok(db.begin_with_options(options).await?)
}

/// Applies pending migrations; returns how many were pending.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let pending = M::get_pending_migrations(db).await?.len();
    M::up(db, None).await?;
    Ok(pending)
}

/// At start: migrate per `migrate_on_start`, or refuse to run on an outdated schema.
pub async fn prepare<M: MigratorTrait>(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<()> {
    let run = match settings.migrate_on_start {
        MigrateOnStart::Always => true,
        MigrateOnStart::Never => false,
        MigrateOnStart::Auto => db.get_database_backend() == DbBackend::Sqlite,
    };
    if run {
        let applied = migrate::<M>(db).await?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        return Ok(());
    }
    let pending = M::get_pending_migrations(db).await?.len();
    if pending > 0 {
        anyhow::bail!(
            "{pending} database migration(s) pending: run the `migrate` subcommand first (a Kubernetes Job in production)"
        );
    }
    Ok(())
}
