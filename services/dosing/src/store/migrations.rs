//! Schema of the dosing database: the platform tables first, then the service's own. Decimal
//! quantities are text columns holding canonical decimals (exact on both backends).

use sea_orm_migration::prelude::*;
use trialops_platform::records::store::schema::*;
use trialops_platform::records::store::{add_column, drop_column, index};

/// All migrations of the dosing database.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = trialops_platform::records::store::migrations();
        all.push(Box::new(CreateDosingTables));
        all.push(Box::new(AddCycleProtocolVersion));
        all
    }
}

struct CreateDosingTables;

impl MigrationName for CreateDosingTables {
    fn name(&self) -> &str {
        "m20261126_000201_dosing_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDosingTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(table(
            "plans",
            vec![
                key("subject_id"),
                text("trial_id"),
                text("arm_code"),
                text("site_code"),
                instant("created_at"),
                int("version"),
            ],
        ))
        .await?;
        m.create_table(table(
            "plan_agents",
            vec![
                key("id"),
                text("subject_id"),
                text("agent_id"),
                int("dose_level"),
                flag("discontinued"),
                long_text("discontinued_reason"),
                int("position"),
            ],
        ))
        .await?;
        m.create_index(index(
            "plan_agents_by_subject",
            Alias::new("plan_agents"),
            &["subject_id", "position"],
            false,
        ))
        .await?;
        m.create_table(table(
            "cycles",
            vec![
                key("id"),
                text("subject_id"),
                int("cycle_number"),
                date("start_date"),
                text("height_cm"),
                text("weight_kg"),
                text("bsa_m2"),
                text("anc_per_ul"),
                text("platelets_per_ul"),
                instant("measured_at"),
                int("delay_days"),
                flag("implausible_confirmed"),
                instant("created_at"),
            ],
        ))
        .await?;
        m.create_index(index(
            "cycles_by_subject",
            Alias::new("cycles"),
            &["subject_id", "cycle_number"],
            true,
        ))
        .await?;
        m.create_table(table(
            "doses",
            vec![
                key("id"),
                text("subject_id"),
                int("cycle_number"),
                text("agent_id"),
                int("dose_level"),
                text("protocol_dose"),
                text("basis"),
                long_text("formula"),
                text("calculated"),
                text("rounded"),
                text("unit"),
                int("position"),
            ],
        ))
        .await?;
        m.create_index(index(
            "doses_by_cycle",
            Alias::new("doses"),
            &["subject_id", "cycle_number", "position"],
            false,
        ))
        .await?;
        let mut started = ColumnDef::new(Alias::new("started_at"))
            .timestamp_with_time_zone()
            .null()
            .to_owned();
        let mut ended = ColumnDef::new(Alias::new("ended_at"))
            .timestamp_with_time_zone()
            .null()
            .to_owned();
        let mut administrations = table(
            "administrations",
            vec![
                key("administration_id"),
                text("subject_id"),
                text("site_code"),
                int("cycle_number"),
                text("agent_id"),
                int("cycle_day"),
                date("planned_on"),
                text("worklist_key"),
                text("prescribed_dose"),
                text("unit"),
                text("status"),
                text("actual_dose"),
                flag("deviation_flagged"),
                long_text("reason"),
                int("version"),
            ],
        );
        administrations.col(&mut started).col(&mut ended);
        m.create_table(administrations).await?;
        // The worklist: one site, a date range, in planned order.
        m.create_index(index(
            "administrations_worklist",
            Alias::new("administrations"),
            &["site_code", "worklist_key"],
            false,
        ))
        .await?;
        m.create_index(index(
            "administrations_unique_slot",
            Alias::new("administrations"),
            &["worklist_key"],
            true,
        ))
        .await?;
        m.create_index(index(
            "administrations_by_subject",
            Alias::new("administrations"),
            &["subject_id", "cycle_number"],
            false,
        ))
        .await?;
        m.create_table(table(
            "start_attempts",
            vec![
                key("request_id"),
                text("subject_id"),
                int("cycle_number"),
                date("planned_start_date"),
                text("anc_per_ul"),
                text("platelets_per_ul"),
                instant("measured_at"),
                long_text("detail"),
                instant("recorded_at"),
            ],
        ))
        .await?;
        m.create_index(index(
            "start_attempts_by_subject",
            Alias::new("start_attempts"),
            &["subject_id", "cycle_number"],
            false,
        ))
        .await
    }
}

/// The protocol version each cycle was dosed under; "" on cycles started before versions were
/// kept, filled in at start from the definition the service then ran (see `lib.rs`).
struct AddCycleProtocolVersion;

impl MigrationName for AddCycleProtocolVersion {
    fn name(&self) -> &str {
        "m20261207_000202_cycles_protocol_version"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddCycleProtocolVersion {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(m, Alias::new("cycles"), text("protocol_version").default("").to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_column(m, Alias::new("cycles"), Alias::new("protocol_version")).await
    }
}
