//! Database connection and migrations: an embedded SQLite file per service by default (WAL,
//! `synchronous=FULL` so a committed clinical record survives a power cut), PostgreSQL by URL.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::settings::{MigrateOnStart, Settings};
use crate::wire::error::AppError;

/// The database URL of `service`: the configured one, or `<data_dir>/<service>.db`.
pub fn database_url(settings: &Settings, service: &str) -> String {
    settings.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            settings.data_dir.join(format!("{service}.db")).display()
        )
    })
}

/// The URL of `service`'s own schema, `trialops_<service>`, in the PostgreSQL database at `url`
/// (its search path): services sharing one database then keep their tables and migration
/// histories apart, as `trialops up` runs them.
pub fn schema_url(url: &str, service: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{}", schema_name(service))
}

fn schema_name(service: &str) -> String {
    let plain: String = service
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    format!("trialops_{plain}")
}

/// Creates `service`'s schema (see [`schema_url`]) in the PostgreSQL database at `url`, unless it
/// exists.
pub async fn create_schema(url: &str, service: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    let db = Database::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database to create the {service} schema: {e}"))?;
    db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema_name(service)))
        .await?;
    db.close().await?;
    Ok(())
}

/// How long a pooled connection may sit idle before it is checked with a round trip when taken.
const RECHECK_IDLE_CONNECTIONS_AFTER: Duration = Duration::from_secs(1);

/// Opens the connection pool of `service`, creating the data folder for SQLite.
pub async fn connect(settings: &Settings, service: &str) -> anyhow::Result<DatabaseConnection> {
    let url = database_url(settings, service);
    if settings.database_url.is_none() {
        crate::config::private_files::create_dir(&settings.data_dir)?;
        crate::config::private_files::prepare_sqlite_file(&settings.data_dir.join(format!("{service}.db")))?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.database_max_connections)
        .connect_timeout(Duration::from_millis(settings.database_acquire_timeout_ms.max(1)))
        .acquire_timeout(Duration::from_millis(settings.database_acquire_timeout_ms.max(1)))
        // sqlx checks a connection with a round trip when it goes back to the pool; checking it
        // again each time it is taken cost every call one more round trip before its first
        // query. Only a connection idle long enough to have been dropped is checked again.
        .test_before_acquire_if_idle_for(RECHECK_IDLE_CONNECTIONS_AFTER)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the {service} database: {e}"))?;
    db.set_metric_callback(|_| count_statement());
    Ok(db)
}

tokio::task_local! {
    static STATEMENTS: std::cell::Cell<u64>;
}

fn count_statement() {
    // Outside a counting scope (the sequencer, migrations) there is nothing to count into.
    let _ = STATEMENTS.try_with(|count| count.set(count.get() + 1));
}

/// Adds `count` statements sent on this task's behalf by another (a batch's writer) to the
/// count of the enclosing [`counting_statements`].
pub fn add_statements(count: u64) {
    let _ = STATEMENTS.try_with(|c| c.set(c.get() + count));
}

/// Runs `work` and counts the SQL statements it sent over connections opened by [`connect`]
/// (queries and commands; not transaction control: `BEGIN`, `COMMIT`, savepoints): the RPC
/// layer's per-call figure
/// (`trialops_rpc_database_statements`).
pub async fn counting_statements<F: std::future::Future>(work: F) -> (F::Output, u64) {
    STATEMENTS
        .scope(std::cell::Cell::new(0), async {
            let output = work.await;
            (output, STATEMENTS.try_with(std::cell::Cell::get).unwrap_or(0))
        })
        .await
}

/// A write transaction; on SQLite, with this process's turn at the file's single writer, held
/// until it commits, rolls back or is dropped. Read and write through it as through the
/// transaction it dereferences to.
pub struct WriteTransaction {
    tx: DatabaseTransaction,
    // Declared after the transaction, so it is released after the transaction ends.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

#[async_trait::async_trait]
impl sea_orm::ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.get_database_backend()
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.tx.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.tx.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: sea_orm::Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.tx.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: sea_orm::Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.tx.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.tx.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.tx.is_mock_connection()
    }
}

impl WriteTransaction {
    /// Commits, then gives the writer's turn to the next.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await
    }

    /// Rolls back, then gives the writer's turn to the next.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.tx.rollback().await
    }
}

/// Begins a write transaction. On SQLite, which has one writer per file, the writers of this
/// process first queue for their turn, first come first served, and then begin with `BEGIN
/// IMMEDIATE` (the write lock taken at the start, never at a first write). Without the queue,
/// concurrent writers wait in SQLite's busy handler, which sleeps and retries: some calls waited
/// hundreds of times the median. Another process on the same file still waits in the busy
/// handler (the busy timeout).
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, AppError> {
    let turn = match sqlite_writer(db) {
        Some(writer) => Some(writer.lock_owned().await),
        None => None,
    };
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let tx = db.begin_with_options(options).await?;
    Ok(WriteTransaction { tx, _turn: turn })
}

/// The queue of this process's writers to the SQLite file behind `db` (none for PostgreSQL):
/// one per file, shared by every pool open on it (two servers in one process, a test).
fn sqlite_writer(db: &DatabaseConnection) -> Option<Arc<tokio::sync::Mutex<()>>> {
    type Writers = std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>>;
    static WRITERS: std::sync::LazyLock<Writers> = std::sync::LazyLock::new(Writers::default);
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    // A poisoned map (a panic while it was held) leaves writers to SQLite's busy handler.
    let mut writers = WRITERS.lock().ok()?;
    Some(writers.entry(file).or_default().clone())
}

/// Where the database's schema stands for this binary's migrator `M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// This binary's migrations the database has not had yet, in order.
    pub pending: Vec<String>,
    /// Migrations the database has that this binary does not know: a later release ran them.
    pub newer: Vec<String>,
}

/// Reads which migrations the database has had, without creating anything.
pub async fn schema_state<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<SchemaState> {
    use sea_orm::EntityTrait;
    use sea_orm_migration::seaql_migrations;
    let applied: std::collections::BTreeSet<String> = if sea_orm_migration::SchemaManager::new(db)
        .has_table("seaql_migrations")
        .await?
    {
        seaql_migrations::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        Default::default()
    };
    let own: Vec<String> = M::migrations().iter().map(|m| m.name().to_owned()).collect();
    Ok(SchemaState {
        pending: own.iter().filter(|name| !applied.contains(*name)).cloned().collect(),
        newer: applied.iter().filter(|name| !own.contains(name)).cloned().collect(),
    })
}

/// Applies this binary's pending migrations; returns how many were pending. A database that a
/// later release migrated further is left as it is (its migrations only add, see the upgrade
/// rules in deploy/README.md), so running an older release's `migrate` is a no-op.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let state = schema_state::<M>(db).await?;
    if !state.newer.is_empty() {
        tracing::info!(newer = ?state.newer, "the database has migrations of a later release");
    }
    if state.pending.is_empty() {
        return Ok(0);
    }
    if !state.newer.is_empty() {
        anyhow::bail!(
            "the database has migrations of a later release ({}) but not this release's {}: \
             migrations must be applied in release order",
            state.newer.join(", "),
            state.pending.join(", ")
        );
    }
    M::up(db, None).await?;
    Ok(state.pending.len())
}

/// A service's database at start: connected, then migrated or checked by [`prepare`].
pub async fn open<M: MigratorTrait>(settings: &Settings, service: &str) -> anyhow::Result<DatabaseConnection> {
    let db = connect(settings, service).await?;
    prepare::<M>(&db, settings).await?;
    Ok(db)
}

/// At start: migrate per `migrate_on_start`, or refuse to run while *this release's* migrations
/// are pending. Migrations of a later release do not stop an older replica: after an upgrade's
/// migration Job, old pods that restart, scale up or come back in a rollback keep serving.
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
    let state = schema_state::<M>(db).await?;
    if !state.pending.is_empty() {
        anyhow::bail!(
            "{} database migration(s) pending: run the `migrate` subcommand first (a Kubernetes Job in production)",
            state.pending.len()
        );
    }
    if !state.newer.is_empty() {
        tracing::info!(newer = ?state.newer, "the database has migrations of a later release; serving on it");
    }
    Ok(())
}
