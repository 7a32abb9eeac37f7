//! Response assessments: the inputs as measured, each component's derived response, the derived
//! overall response and, beside it, any override with its reason. Never updated.

use sea_orm::entity::prelude::*;
use serde::Serialize;
use trialops_domain::outcomes::inrc::Response;

/// A response assessment.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "assessments")]
pub struct Model {
    /// Assessment id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub assessment_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Arm (from enrollment).
    pub arm_code: String,
    /// Assessment date.
    pub assessed_on: Date,
    /// After this cycle; 0 = baseline.
    pub after_cycle: i32,
    /// "site" or "central_review".
    pub assessor: String,
    /// "inrc_2017".
    pub criteria: String,
    /// Primary longest diameter, mm (canonical decimal text; empty when not involved).
    pub primary_mm: String,
    /// Primary uptake persists.
    pub primary_avid: bool,
    /// Sum of diameters of metastases, mm (empty when not involved).
    pub metastases_sum_mm: String,
    /// Every metastatic target < 10 mm.
    pub metastases_under_10_mm: bool,
    /// Curie score total (0–30).
    pub curie_score: i32,
    /// The 9 skeletal segments of the Curie score (0–27), the bone score of the relative MIBG
    /// score; `None` for assessments recorded before it was stored.
    pub curie_skeletal_score: Option<i32>,
    /// FDG-avid metastatic lesions, when FDG-PET was done and the protocol uses them.
    pub fdg_avid_lesions: Option<i32>,
    /// New lesions.
    pub new_lesions: bool,
    /// Metastases not involved at baseline.
    pub metastases_not_involved: bool,
    /// Marrow tumour, % (canonical decimal text).
    pub marrow_percent: String,
    /// Primary tumour not involved at baseline.
    pub primary_not_involved: bool,
    /// Derived component responses ("baseline" for the baseline assessment).
    pub primary_response: String,
    /// Derived metastases response.
    pub metastases_response: String,
    /// Derived marrow response.
    pub marrow_response: String,
    /// Derived overall response.
    pub derived_overall: String,
    /// Overall response after any override (equals the derived one otherwise).
    pub overall: String,
    /// Why the derived response was overridden; empty when not.
    #[sea_orm(column_type = "Text")]
    pub override_reason: String,
    /// When recorded, UTC.
    pub recorded_at: DateTimeUtc,
    /// The protocol version whose rules judged it (in force on `assessed_on`); "" when recorded
    /// before versions were kept.
    pub protocol_version: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// An assessment by its id.
pub async fn find<C: ConnectionTrait>(conn: &C, assessment_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(assessment_id.to_owned()).one(conn).await
}

/// Stores a new assessment.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Who assessed: the stored names of the contract's assessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessor {
    /// The site's investigator (`site`).
    Site,
    /// Central review (`central_review`).
    CentralReview,
}

impl Assessor {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Assessor::Site => "site",
            Assessor::CentralReview => "central_review",
        }
    }
}

impl Model {
    /// The assessor; a stored name no version writes is an error, never a guess.
    pub fn assessor(&self) -> Result<Assessor, DbErr> {
        [Assessor::Site, Assessor::CentralReview]
            .into_iter()
            .find(|a| a.as_str() == self.assessor)
            .ok_or_else(|| self.unknown("assessor", &self.assessor))
    }

    /// A stored response of this assessment: `None` for "baseline" (nothing is derived at
    /// baseline), the response otherwise; any other name is an error.
    pub fn response(&self, column: &'static str, name: &str) -> Result<Option<Response>, DbErr> {
        match (name, Response::parse(name)) {
            ("baseline", _) => Ok(None),
            (_, Some(response)) => Ok(Some(response)),
            (_, None) => Err(self.unknown(column, name)),
        }
    }

    /// The overall response ([`Model::response`] of `overall`).
    pub fn overall(&self) -> Result<Option<Response>, DbErr> {
        self.response("overall", &self.overall)
    }

    fn unknown(&self, column: &str, name: &str) -> DbErr {
        DbErr::Custom(format!(
            "assessment {} has the unknown stored {column} {name:?}",
            self.assessment_id
        ))
    }
}
