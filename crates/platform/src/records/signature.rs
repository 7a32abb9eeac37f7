//! Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200): a person, freshly
//! authenticated, signs one record with a meaning; the signature keeps their printed name, the
//! time and the SHA-256 of the content signed.
//!
//! The content hash is SHA-256 over the compact JSON array
//! `["trialops-signature-v1", record_type, record_id, content]`, where `content` is the record's
//! signed fields as a JSON object with its keys sorted (each service names the fields of each
//! kind of record it signs). Because the kind and the identifier are inside the hash, a signature
//! row copied to another record does not apply there; because the content is, a later change to
//! the record shows the signature no longer applies. Each signature is also an audit log entry
//! (`record.signed`, entity type `signature`) naming the record, so the transparency log holds it
//! and VerifyAuditTrail compares every stored signature with it.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use trialops_proto::common::v1::{self as common, CommonReason, SignatureMeaning};

use crate::config::settings::Settings;
use crate::identity::auth::{CallContext, Role};
use crate::records::audit::{self, AuditContext, Change};
use crate::records::replay::{RecordKind, Rows, rows};
use crate::records::store::signature as row;
use crate::wire::convert::to_timestamp;
use crate::wire::error::{AppError, Violation};
use crate::wire::fields::violation;

/// The audit action of every signature.
pub const SIGNED_ACTION: &str = "record.signed";

/// The audit log's entity type of signatures (the entry's id is the signature's).
pub const ENTITY_TYPE: &str = "signature";

/// Signatures for VerifyAuditTrail: each row was written with an entry holding it, so a row
/// changed behind the service (another signer, meaning or hash) is named.
pub const RECORDS: RecordKind = RecordKind {
    entity_type: ENTITY_TYPE,
    actions: &[(SIGNED_ACTION, "")],
    every_row_has_entry: true,
    rows: signature_rows,
};

fn signature_rows(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<row::Entity>(db, |s| s.signature_id.clone()))
}

/// Domain separation of the content hash; a new content rule would get a new label.
const HASH_LABEL: &str = "trialops-signature-v1";

/// What a signature means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The signer reviewed the record.
    Reviewed,
    /// The signer approved the record.
    Approved,
    /// The signer is responsible for the record.
    ResponsibleFor,
}

impl Meaning {
    /// The stored name, for example "responsible_for".
    pub fn as_str(self) -> &'static str {
        match self {
            Meaning::Reviewed => "reviewed",
            Meaning::Approved => "approved",
            Meaning::ResponsibleFor => "responsible_for",
        }
    }

    /// The meaning in words, as a signature manifestation shows it.
    pub fn words(self) -> &'static str {
        match self {
            Meaning::Reviewed => "Reviewed",
            Meaning::Approved => "Approved",
            Meaning::ResponsibleFor => "Responsible for",
        }
    }

    /// The meaning of a stored name.
    pub fn parse(name: &str) -> Option<Meaning> {
        [Meaning::Reviewed, Meaning::Approved, Meaning::ResponsibleFor]
            .into_iter()
            .find(|m| m.as_str() == name)
    }

    /// The meaning of a request's `field`, or a violation naming the values allowed.
    pub fn from_proto(field: &str, value: i32) -> Result<Meaning, Violation> {
        match SignatureMeaning::try_from(value) {
            Ok(SignatureMeaning::Reviewed) => Ok(Meaning::Reviewed),
            Ok(SignatureMeaning::Approved) => Ok(Meaning::Approved),
            Ok(SignatureMeaning::ResponsibleFor) => Ok(Meaning::ResponsibleFor),
            _ => Err(violation(field, "required: one of REVIEWED, APPROVED, RESPONSIBLE_FOR")),
        }
    }

    fn to_proto(self) -> SignatureMeaning {
        match self {
            Meaning::Reviewed => SignatureMeaning::Reviewed,
            Meaning::Approved => SignatureMeaning::Approved,
            Meaning::ResponsibleFor => SignatureMeaning::ResponsibleFor,
        }
    }
}

/// One record as signed: its kind and id, where it belongs, and its signed fields.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Kind, for example "adverse_event".
    pub kind: &'a str,
    /// Identifier, unique within the kind.
    pub id: &'a str,
    /// The record's trial.
    pub trial_id: &'a str,
    /// The record's site.
    pub site_code: &'a str,
    /// The signed fields.
    pub content: Json,
}

/// Lower-case hex SHA-256 of a record's signed content (see the module documentation).
pub fn content_sha256(kind: &str, id: &str, content: &Json) -> String {
    let bound = serde_json::json!([HASH_LABEL, kind, id, sorted(content)]);
    hex::encode(Sha256::digest(bound.to_string().as_bytes()))
}

/// `value` with every object's keys in sorted order, whatever order the map keeps (serde_json
/// keeps insertion order when any crate of the build enables its `preserve_order`): the hash of
/// a signed record must not change with the build.
fn sorted(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let ordered: std::collections::BTreeMap<&String, Json> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
            Json::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The object of `fields` taken from `record` (a stored row as JSON): a record kind's signed
/// content. A field the row lacks is null.
pub fn pick(record: &Json, fields: &[&str]) -> Json {
    Json::Object(
        fields
            .iter()
            .map(|f| ((*f).to_owned(), record.get(*f).cloned().unwrap_or(Json::Null)))
            .collect(),
    )
}

/// Who may sign and how recently they must have authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Signing {
    max_auth_age_minutes: u32,
}

/// A person about to sign: who, under which name, role and site, authenticated when.
#[derive(Debug, Clone)]
pub struct Signer {
    subject: String,
    name: String,
    role: Role,
    site: String,
    authenticated_at: DateTime<Utc>,
}

impl Signing {
    /// The rules of the service's settings (`signature_max_auth_age_minutes`).
    pub fn from_settings(settings: &Settings) -> Signing {
        Signing {
            max_auth_age_minutes: settings.signature_max_auth_age_minutes,
        }
    }

    /// The caller as a signer, or FAILED_PRECONDITION `REAUTHENTICATION_REQUIRED` when their
    /// credentials name no person or show no authentication within the allowed minutes. The
    /// age is measured on the system clock, as token expiry is.
    pub fn signer(&self, call: &CallContext) -> Result<Signer, AppError> {
        let principal = &call.principal;
        let refuse = |message: String| AppError::FailedPrecondition {
            reason: CommonReason::ReauthenticationRequired.into(),
            message,
            metadata: vec![("max_age_minutes".into(), self.max_auth_age_minutes.to_string())],
        };
        let name = principal.name.clone().ok_or_else(|| {
            refuse("a signature shows the signer's printed name: the credentials carry none (claim `name`)".into())
        })?;
        let authenticated_at = principal
            .authenticated_at
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or_else(|| {
                refuse(
                    "a signature needs the time of authentication: the credentials carry none (`auth_time` or `iat`)"
                        .into(),
                )
            })?;
        let age = Utc::now().signed_duration_since(authenticated_at);
        if age > chrono::Duration::minutes(i64::from(self.max_auth_age_minutes)) {
            return Err(refuse(format!(
                "a signature needs an authentication within the last {} minutes; this one is {} minutes old: \
                 authenticate again and sign with the new credentials",
                self.max_auth_age_minutes,
                age.num_minutes()
            )));
        }
        Ok(Signer {
            subject: principal.subject.clone(),
            name,
            role: principal.role,
            site: principal.site.clone().unwrap_or_default(),
            authenticated_at,
        })
    }
}

/// Signs `record` as `signer` with `meaning`: the signature stored and audited in `conn`'s
/// transaction. Returns it and every signature of the record, oldest first, itself last.
/// ALREADY_EXISTS `ALREADY_SIGNED` when the signer already signed this content with this
/// meaning.
pub async fn sign<C: ConnectionTrait>(
    conn: &C,
    ctx: &AuditContext,
    signer: &Signer,
    meaning: Meaning,
    record: &Record<'_>,
) -> Result<(row::Model, Vec<row::Model>), AppError> {
    let content_sha256 = content_sha256(record.kind, record.id, &record.content);
    let mut all = of_records(conn, record.kind, &[record.id]).await?;
    if all
        .iter()
        .any(|s| s.signer == signer.subject && s.meaning == meaning.as_str() && s.content_sha256 == content_sha256)
    {
        return Err(AppError::AlreadyExists {
            reason: CommonReason::AlreadySigned.into(),
            message: format!(
                "{} {} already carries your signature ({}) of this content",
                record.kind.replace('_', " "),
                record.id,
                meaning.as_str()
            ),
        });
    }
    let signature = row::Model {
        signature_id: uuid::Uuid::new_v4().to_string(),
        record_type: record.kind.to_owned(),
        record_id: record.id.to_owned(),
        trial_id: record.trial_id.to_owned(),
        site_code: record.site_code.to_owned(),
        signer: signer.subject.clone(),
        printed_name: signer.name.clone(),
        signer_role: signer.role.as_str().to_owned(),
        signer_site: signer.site.clone(),
        meaning: meaning.as_str().to_owned(),
        signed_at: crate::clock::now_stored(),
        authenticated_at: signer.authenticated_at,
        content_sha256,
    };
    row::Entity::insert(row::ActiveModel::from(signature.clone()))
        .exec_without_returning(conn)
        .await?;
    let change = Change::created(
        SIGNED_ACTION,
        ENTITY_TYPE,
        &signature.signature_id,
        audit::to_json(&signature)?,
    )
    .within(record.trial_id, record.site_code);
    audit::append(conn, ctx, change).await?;
    all.push(signature.clone());
    Ok((signature, all))
}

/// The signatures of the records of `kind` with these ids, oldest first.
pub async fn of_records<C: ConnectionTrait>(conn: &C, kind: &str, ids: &[&str]) -> Result<Vec<row::Model>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(row::Entity::find()
        .filter(row::Column::RecordType.eq(kind))
        .filter(row::Column::RecordId.is_in(ids.iter().copied()))
        .order_by_asc(row::Column::SignedAt)
        .order_by_asc(row::Column::SignatureId)
        .all(conn)
        .await?)
}

/// The signatures among `rows` of the record `id` of `kind` as shown with it: each says whether
/// it still applies to `content`, the record's signed fields now.
pub fn shown(rows: &[row::Model], kind: &str, id: &str, content: &Json) -> Vec<common::Signature> {
    let now = content_sha256(kind, id, content);
    rows.iter()
        .filter(|s| s.record_type == kind && s.record_id == id)
        .map(|s| to_proto(s, s.content_sha256 == now))
        .collect()
}

/// Wire form of a signature.
pub fn to_proto(s: &row::Model, applies: bool) -> common::Signature {
    common::Signature {
        signature_id: s.signature_id.clone(),
        signer: s.signer.clone(),
        printed_name: s.printed_name.clone(),
        signer_role: s.signer_role.clone(),
        signer_site: s.signer_site.clone(),
        meaning: Meaning::parse(&s.meaning).map_or(SignatureMeaning::Unspecified, Meaning::to_proto) as i32,
        signed_at: Some(to_timestamp(s.signed_at)),
        authenticated_at: Some(to_timestamp(s.authenticated_at)),
        content_sha256: s.content_sha256.clone(),
        applies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_binds_the_kind_the_identifier_and_every_signed_field() {
        let content = serde_json::json!({"grade": 3, "term": "Neutrophil count decreased"});
        // Computed independently: printf '%s' '["trialops-signature-v1","adverse_event","AE-1",
        // {"grade":3,"term":"Neutrophil count decreased"}]' | sha256sum
        assert_eq!(
            content_sha256("adverse_event", "AE-1", &content),
            "efd711b1a2c1fb3b0e1b91a327f68e96a07054ed5eff79b1530804c8ad9a829a"
        );
        assert_ne!(
            content_sha256("adverse_event", "AE-2", &content),
            content_sha256("adverse_event", "AE-1", &content)
        );
        let regraded = serde_json::json!({"grade": 4, "term": "Neutrophil count decreased"});
        assert_ne!(
            content_sha256("adverse_event", "AE-1", &regraded),
            content_sha256("adverse_event", "AE-1", &content)
        );
    }

    #[test]
    fn a_copied_or_outdated_signature_is_shown_as_not_applying() {
        let content = serde_json::json!({"eligible": true});
        let signature = row::Model {
            signature_id: "s1".into(),
            record_type: "screening".into(),
            record_id: "T/A/1".into(),
            trial_id: "T".into(),
            site_code: "S".into(),
            signer: "dr-a".into(),
            printed_name: "A. Investigator".into(),
            signer_role: "investigator".into(),
            signer_site: "S".into(),
            meaning: "approved".into(),
            signed_at: DateTime::UNIX_EPOCH,
            authenticated_at: DateTime::UNIX_EPOCH,
            content_sha256: content_sha256("screening", "T/A/1", &content),
        };
        let rows = [signature.clone()];
        let shown_now = shown(&rows, "screening", "T/A/1", &content);
        assert_eq!(shown_now.len(), 1);
        assert!(shown_now[0].applies);
        assert_eq!(shown_now[0].meaning, SignatureMeaning::Approved as i32);
        let changed = serde_json::json!({"eligible": false});
        assert!(!shown(&rows, "screening", "T/A/1", &changed)[0].applies);
        // The same row moved to another record with the same content.
        let copied = [row::Model {
            record_id: "T/B/1".into(),
            ..signature
        }];
        assert!(!shown(&copied, "screening", "T/B/1", &content)[0].applies);
    }

    #[test]
    fn pick_takes_the_named_fields_in_sorted_order_with_null_for_missing_ones() {
        let row = serde_json::json!({"b": 2, "a": 1, "version": 7});
        assert_eq!(pick(&row, &["b", "a", "c"]).to_string(), r#"{"a":1,"b":2,"c":null}"#);
    }
}
