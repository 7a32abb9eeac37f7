//! Schema of the outcomes database: the platform tables first, then the service's own.

use sea_orm_migration::prelude::*;
use trialops_platform::records::store::index;
use trialops_platform::records::store::schema::*;

/// All migrations of the outcomes database.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = trialops_platform::records::store::migrations();
        all.push(Box::new(CreateOutcomesTables));
        all.push(Box::new(AddSkeletalCurieScore));
        all.push(Box::new(AddAssessmentProtocolVersion));
        all
    }
}

struct CreateOutcomesTables;

/// The bone (skeletal) part of each assessment's Curie score, which the relative MIBG score
/// uses (earlier assessments keep NULL: only their total was recorded), and the FDG-avid lesion
/// count of protocols that judge metastases by FDG-PET; and the re-derivations appended when
/// an earlier assessment's segments are re-entered.
struct AddSkeletalCurieScore;

impl MigrationName for AddSkeletalCurieScore {
    fn name(&self) -> &str {
        "m20261201_000302_outcomes_bone_score_fdg_rederivations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSkeletalCurieScore {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("assessments"))
                .add_column(ColumnDef::new(Alias::new("curie_skeletal_score")).integer().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("assessments"))
                .add_column(ColumnDef::new(Alias::new("fdg_avid_lesions")).integer().null())
                .to_owned(),
        )
        .await?;
        m.create_table(table(
            "assessment_rederivations",
            vec![
                key("rederivation_id"),
                text("assessment_id"),
                text("subject_id"),
                text("trial_id"),
                ColumnDef::new(Alias::new("curie_skeletal_score"))
                    .integer()
                    .null()
                    .to_owned(),
                text("primary_response"),
                text("metastases_response"),
                text("marrow_response"),
                text("derived_overall"),
                text("overall"),
                flag("changed"),
                long_text("reason"),
                int("sequence"),
                instant("recorded_at"),
            ],
        ))
        .await?;
        for (name, column) in [
            ("assessment_rederivations_subject", "subject_id"),
            ("assessment_rederivations_trial", "trial_id"),
        ] {
            m.create_index(index(name, Alias::new("assessment_rederivations"), &[column], false))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("assessment_rederivations")).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("assessments"))
                .drop_column(Alias::new("fdg_avid_lesions"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("assessments"))
                .drop_column(Alias::new("curie_skeletal_score"))
                .to_owned(),
        )
        .await
    }
}

impl MigrationName for CreateOutcomesTables {
    fn name(&self) -> &str {
        "m20261126_000301_outcomes_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutcomesTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(table(
            "assessments",
            vec![
                key("assessment_id"),
                text("subject_id"),
                text("trial_id"),
                text("arm_code"),
                date("assessed_on"),
                int("after_cycle"),
                text("assessor"),
                text("criteria"),
                text("primary_mm"),
                flag("primary_avid"),
                text("metastases_sum_mm"),
                flag("metastases_under_10_mm"),
                int("curie_score"),
                flag("new_lesions"),
                flag("metastases_not_involved"),
                text("marrow_percent"),
                flag("primary_not_involved"),
                text("primary_response"),
                text("metastases_response"),
                text("marrow_response"),
                text("derived_overall"),
                text("overall"),
                long_text("override_reason"),
                instant("recorded_at"),
            ],
        ))
        .await?;
        // A subject's history in date order; the trial's analyses by assessor.
        m.create_index(index(
            "assessments_by_subject",
            Alias::new("assessments"),
            &["subject_id", "assessor", "assessed_on"],
            false,
        ))
        .await?;
        m.create_index(index(
            "assessments_by_trial",
            Alias::new("assessments"),
            &["trial_id", "assessor", "after_cycle"],
            false,
        ))
        .await?;
        m.create_table(table(
            "adverse_events",
            vec![
                key("adverse_event_id"),
                text("subject_id"),
                text("trial_id"),
                text("arm_code"),
                text("site_code"),
                text("ctcae_term"),
                text("ctcae_version"),
                int("grade"),
                date("onset_on"),
                instant("site_aware_at"),
                optional_date("resolved_on"),
                long_text("attributions"),
                long_text("seriousness"),
                flag("expected"),
                int("cycle_at_onset"),
                long_text("agents_at_onset"),
                int("version"),
                instant("recorded_at"),
            ],
        ))
        .await?;
        m.create_index(index(
            "adverse_events_by_subject",
            Alias::new("adverse_events"),
            &["subject_id", "onset_on"],
            false,
        ))
        .await?;
        m.create_index(index(
            "adverse_events_by_grade",
            Alias::new("adverse_events"),
            &["trial_id", "grade"],
            false,
        ))
        .await?;
        m.create_table(table(
            "obligations",
            vec![
                key("obligation_id"),
                text("adverse_event_id"),
                text("subject_id"),
                text("site_code"),
                text("kind"),
                long_text("rule"),
                instant("due_at"),
                flag("open"),
                optional_instant("submitted_at"),
            ],
        ))
        .await?;
        // Overdue and due-soon: open obligations by deadline.
        m.create_index(index(
            "obligations_open_by_due",
            Alias::new("obligations"),
            &["open", "due_at", "obligation_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "obligations_by_event",
            Alias::new("obligations"),
            &["adverse_event_id"],
            false,
        ))
        .await?;
        m.create_table(table(
            "follow_ups",
            vec![
                key("id"),
                text("subject_id"),
                text("trial_id"),
                date("last_contact_on"),
                text("vital_status"),
                optional_date("progression_on"),
                optional_date("second_malignancy_on"),
                instant("recorded_at"),
            ],
        ))
        .await?;
        m.create_index(index(
            "follow_ups_by_trial",
            Alias::new("follow_ups"),
            &["trial_id", "subject_id", "last_contact_on"],
            false,
        ))
        .await
    }
}

/// The protocol version each response assessment was judged under; "" on those recorded before
/// versions were kept (the trial's first version, whose rules the service then ran).
struct AddAssessmentProtocolVersion;

impl MigrationName for AddAssessmentProtocolVersion {
    fn name(&self) -> &str {
        "m20261207_000303_assessments_protocol_version"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddAssessmentProtocolVersion {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(Alias::new("protocol_version"))
            .string()
            .not_null()
            .default("")
            .to_owned();
        trialops_platform::records::store::add_column(m, Alias::new("assessments"), column).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        trialops_platform::records::store::drop_column(m, Alias::new("assessments"), Alias::new("protocol_version"))
            .await
    }
}
