//! Schema of the enrollment database: the platform tables first, then the service's own.
//! Every list filter has an index (DESIGN: no unindexed filter).

use sea_orm_migration::prelude::*;
use trialops_platform::records::store::{add_column, drop_column, index};

/// All migrations of the enrollment database.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = trialops_platform::records::store::migrations();
        all.push(Box::new(CreateEnrollmentTables));
        all.push(Box::new(CreateAccrualClosures));
        all.push(Box::new(CreateAllocationReveals));
        all.push(Box::new(AddRandomizedInError));
        all.push(Box::new(CreateUnblindings));
        all.push(Box::new(AddSiteCountry));
        all.push(Box::new(CreateProtocolVersions));
        all
    }
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    SiteCode,
    Name,
    RegisteredAt,
    Country,
}

#[derive(DeriveIden)]
enum Screenings {
    Table,
    Id,
    TrialId,
    ScreeningId,
    Attempt,
    SiteCode,
    AssessedOn,
    Eligible,
    ResultsJson,
    ValuesJson,
    RecordedAt,
    ProtocolVersion,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    SubjectId,
    TrialId,
    SubjectNumber,
    SiteCode,
    ScreeningId,
    ArmCode,
    Strata,
    RandomizedStratum,
    ConsentSignedOn,
    ConsentFormVersion,
    Status,
    StatusReason,
    StatusEffectiveOn,
    EnrolledAt,
    UpdatedAt,
    Version,
    RandomizedInError,
    RandomizedInErrorReason,
    ProtocolVersion,
}

#[derive(DeriveIden)]
enum Allocations {
    Table,
    SubjectId,
    TrialId,
    Stratum,
    Position,
    ArmCode,
    AllocatedAt,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum TrialKeys {
    Table,
    TrialId,
    Fingerprint,
    FirstUsedAt,
}

struct CreateEnrollmentTables;

impl MigrationName for CreateEnrollmentTables {
    fn name(&self) -> &str {
        "m20261126_000101_enrollment_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEnrollmentTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sites::Table)
                .col(ColumnDef::new(Sites::SiteCode).string_len(32).not_null().primary_key())
                .col(ColumnDef::new(Sites::Name).string_len(200).not_null())
                .col(
                    ColumnDef::new(Sites::RegisteredAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Screenings::Table)
                .col(ColumnDef::new(Screenings::Id).string_len(36).not_null().primary_key())
                .col(ColumnDef::new(Screenings::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(Screenings::ScreeningId).string_len(64).not_null())
                .col(ColumnDef::new(Screenings::Attempt).integer().not_null())
                .col(ColumnDef::new(Screenings::SiteCode).string_len(32).not_null())
                .col(ColumnDef::new(Screenings::AssessedOn).date().not_null())
                .col(ColumnDef::new(Screenings::Eligible).boolean().not_null())
                .col(ColumnDef::new(Screenings::ResultsJson).text().not_null())
                .col(ColumnDef::new(Screenings::ValuesJson).text().not_null())
                .col(
                    ColumnDef::new(Screenings::RecordedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "screenings_by_candidate",
            Screenings::Table,
            &["trial_id", "screening_id", "attempt"],
            true,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Subjects::Table)
                .col(
                    ColumnDef::new(Subjects::SubjectId)
                        .string_len(40)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Subjects::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(Subjects::SubjectNumber).big_integer().not_null())
                .col(ColumnDef::new(Subjects::SiteCode).string_len(32).not_null())
                .col(ColumnDef::new(Subjects::ScreeningId).string_len(64).not_null())
                .col(ColumnDef::new(Subjects::ArmCode).string_len(8).not_null())
                .col(ColumnDef::new(Subjects::Strata).string().not_null())
                .col(ColumnDef::new(Subjects::RandomizedStratum).string().not_null())
                .col(ColumnDef::new(Subjects::ConsentSignedOn).date().not_null())
                .col(ColumnDef::new(Subjects::ConsentFormVersion).string_len(64).not_null())
                .col(ColumnDef::new(Subjects::Status).string_len(32).not_null())
                .col(ColumnDef::new(Subjects::StatusReason).text().not_null())
                .col(ColumnDef::new(Subjects::StatusEffectiveOn).date().not_null())
                .col(
                    ColumnDef::new(Subjects::EnrolledAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Subjects::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(Subjects::Version).integer().not_null())
                .to_owned(),
        )
        .await?;
        // One enrollment per candidate and one subject per number, whatever the concurrency.
        m.create_index(index(
            "subjects_by_screening",
            Subjects::Table,
            &["trial_id", "screening_id"],
            true,
        ))
        .await?;
        m.create_index(index(
            "subjects_by_number",
            Subjects::Table,
            &["trial_id", "subject_number"],
            true,
        ))
        .await?;
        m.create_index(index(
            "subjects_by_site",
            Subjects::Table,
            &["trial_id", "site_code", "subject_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "subjects_by_arm",
            Subjects::Table,
            &["trial_id", "arm_code", "subject_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "subjects_by_status",
            Subjects::Table,
            &["trial_id", "status", "subject_id"],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Allocations::Table)
                .col(
                    ColumnDef::new(Allocations::SubjectId)
                        .string_len(40)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Allocations::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(Allocations::Stratum).string().not_null())
                .col(ColumnDef::new(Allocations::Position).big_integer().not_null())
                .col(ColumnDef::new(Allocations::ArmCode).string_len(8).not_null())
                .col(
                    ColumnDef::new(Allocations::AllocatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        // A position of a stratum's sequence is used once; the summary groups by stratum and arm.
        m.create_index(index(
            "allocations_by_position",
            Allocations::Table,
            &["trial_id", "stratum", "position"],
            true,
        ))
        .await?;
        m.create_index(index(
            "allocations_by_arm",
            Allocations::Table,
            &["trial_id", "stratum", "arm_code"],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Counters::Table)
                .col(ColumnDef::new(Counters::Name).string().not_null().primary_key())
                .col(ColumnDef::new(Counters::Value).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TrialKeys::Table)
                .col(
                    ColumnDef::new(TrialKeys::TrialId)
                        .string_len(20)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(TrialKeys::Fingerprint).string_len(16).not_null())
                .col(
                    ColumnDef::new(TrialKeys::FirstUsedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum AccrualClosures {
    Table,
    Scope,
    TrialId,
    SiteCode,
    Reason,
    ClosedAt,
}

/// Closures of accrual to a trial or a site (a new table: nothing existing changes).
struct CreateAccrualClosures;

impl MigrationName for CreateAccrualClosures {
    fn name(&self) -> &str {
        "m20261201_000101_accrual_closures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAccrualClosures {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AccrualClosures::Table)
                .col(
                    ColumnDef::new(AccrualClosures::Scope)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AccrualClosures::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(AccrualClosures::SiteCode).string_len(32).not_null())
                .col(ColumnDef::new(AccrualClosures::Reason).text().not_null())
                .col(
                    ColumnDef::new(AccrualClosures::ClosedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "accrual_closures_by_trial",
            AccrualClosures::Table,
            &["trial_id", "site_code"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AccrualClosures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AllocationReveals {
    Table,
    TrialId,
    Reason,
    RevealedAt,
}

/// Trials whose allocation key was revealed (a new table: nothing existing changes).
struct CreateAllocationReveals;

impl MigrationName for CreateAllocationReveals {
    fn name(&self) -> &str {
        "m20261201_000102_allocation_reveals"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAllocationReveals {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AllocationReveals::Table)
                .col(
                    ColumnDef::new(AllocationReveals::TrialId)
                        .string_len(20)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AllocationReveals::Reason).text().not_null())
                .col(
                    ColumnDef::new(AllocationReveals::RevealedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AllocationReveals::Table).to_owned())
            .await
    }
}

/// Subjects randomized in error: a flag and its reason; existing subjects get false and "".
struct AddRandomizedInError;

impl MigrationName for AddRandomizedInError {
    fn name(&self) -> &str {
        "m20261201_000103_subjects_randomized_in_error"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRandomizedInError {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        m.alter_table(
            Table::alter()
                .table(Subjects::Table)
                .add_column(
                    ColumnDef::new(Subjects::RandomizedInError)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Subjects::Table)
                .add_column(
                    ColumnDef::new(Subjects::RandomizedInErrorReason)
                        .text()
                        .not_null()
                        .default(""),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Subjects::RandomizedInErrorReason, Subjects::RandomizedInError] {
            m.alter_table(Table::alter().table(Subjects::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Unblindings {
    Table,
    UnblindingId,
    SubjectId,
    TrialId,
    SiteCode,
    ArmCode,
    Reason,
    UnblindedBy,
    UnblindedByRole,
    UnblindedAt,
}

/// Emergency unblindings, listed per trial in time order.
struct CreateUnblindings;

impl MigrationName for CreateUnblindings {
    fn name(&self) -> &str {
        "m20261207_000104_unblindings"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUnblindings {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Unblindings::Table)
                .col(
                    ColumnDef::new(Unblindings::UnblindingId)
                        .string_len(36)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Unblindings::SubjectId).string_len(40).not_null())
                .col(ColumnDef::new(Unblindings::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(Unblindings::SiteCode).string_len(32).not_null())
                .col(ColumnDef::new(Unblindings::ArmCode).string_len(8).not_null())
                .col(ColumnDef::new(Unblindings::Reason).text().not_null())
                .col(ColumnDef::new(Unblindings::UnblindedBy).string_len(200).not_null())
                .col(ColumnDef::new(Unblindings::UnblindedByRole).string_len(32).not_null())
                .col(
                    ColumnDef::new(Unblindings::UnblindedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "unblindings_by_trial",
            Unblindings::Table,
            &["trial_id", "unblinded_at", "unblinding_id"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Unblindings::Table).to_owned()).await
    }
}

/// Sites' countries (SDTM DM.COUNTRY); existing sites get "" (not recorded).
struct AddSiteCountry;

impl MigrationName for AddSiteCountry {
    fn name(&self) -> &str {
        "m20261207_000105_sites_country"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSiteCountry {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            m,
            Sites::Table,
            ColumnDef::new(Sites::Country).text().not_null().default("").to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_column(m, Sites::Table, Sites::Country).await
    }
}

#[derive(DeriveIden)]
enum ProtocolVersions {
    Table,
    TrialId,
    Ordinal,
    Version,
    EffectiveOn,
    Reason,
    ActivatedBy,
    ActivatedAt,
    DefinitionSha256,
    Definition,
}

/// A record's protocol version: "" until filled in.
fn version_column(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).string_len(40).not_null().default("").to_owned()
}

/// Versions of each trial's protocol definition (amendments), and the version each screening and
/// subject was judged under ("" on rows recorded before: the first version, filled in when it is
/// recorded at the next start).
struct CreateProtocolVersions;

impl MigrationName for CreateProtocolVersions {
    fn name(&self) -> &str {
        "m20261207_000106_protocol_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProtocolVersions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ProtocolVersions::Table)
                .col(ColumnDef::new(ProtocolVersions::TrialId).string_len(20).not_null())
                .col(ColumnDef::new(ProtocolVersions::Ordinal).integer().not_null())
                .col(ColumnDef::new(ProtocolVersions::Version).string_len(40).not_null())
                .col(ColumnDef::new(ProtocolVersions::EffectiveOn).date().null())
                .col(ColumnDef::new(ProtocolVersions::Reason).text().not_null())
                .col(ColumnDef::new(ProtocolVersions::ActivatedBy).string_len(200).not_null())
                .col(
                    ColumnDef::new(ProtocolVersions::ActivatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ProtocolVersions::DefinitionSha256)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(ProtocolVersions::Definition).text().not_null())
                .primary_key(
                    Index::create()
                        .col(ProtocolVersions::TrialId)
                        .col(ProtocolVersions::Ordinal),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "protocol_versions_by_version",
            ProtocolVersions::Table,
            &["trial_id", "version"],
            true,
        ))
        .await?;
        add_column(m, Screenings::Table, version_column(Screenings::ProtocolVersion)).await?;
        add_column(m, Subjects::Table, version_column(Subjects::ProtocolVersion)).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_column(m, Subjects::Table, Subjects::ProtocolVersion).await?;
        drop_column(m, Screenings::Table, Screenings::ProtocolVersion).await?;
        m.drop_table(Table::drop().table(ProtocolVersions::Table).to_owned())
            .await
    }
}
