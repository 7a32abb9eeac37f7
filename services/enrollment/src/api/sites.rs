//! RegisterSite and ListSites.

use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::identifiers::{Country, SiteCode};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::wire::{convert as wire, fields::AllFields, pagination};
use trialops_platform::{AppError, records::idempotency};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, convert};
use crate::error::Reason;
use crate::store::site;

pub(super) async fn register(
    api: &EnrollmentApi,
    request: Request<pb::RegisterSiteRequest>,
) -> Result<pb::RegisterSiteResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, site, name, country) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("site_code", SiteCode::parse(&req.site_code)),
        wire::text("name", &req.name, 200),
        wire::parsed(
            "country",
            match req.country.as_str() {
                "" => Ok(None),
                code => Country::parse(code).map(Some),
            },
        ),
    )
        .all()?;
    let audit_ctx = AuditContext::new(call, request_id);
    let record = site::Model {
        site_code: site.to_string(),
        name,
        registered_at: trialops_platform::clock::now_stored(),
        country: country.map(|c| c.to_string()).unwrap_or_default(),
    };
    idempotency::execute(&api.db, "EnrollmentService/RegisterSite", request_id, &req, move |tx| {
        Box::pin(register_in(tx, audit_ctx, record))
    })
    .await
}

/// The transaction: the code must be free; the site is stored and audited.
async fn register_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    record: site::Model,
) -> Result<pb::RegisterSiteResponse, AppError> {
    if site::is_registered(tx, &record.site_code).await? {
        return Err(AppError::AlreadyExists {
            reason: Reason::SiteAlreadyRegistered.into(),
            message: format!("site {} is already registered", record.site_code),
        });
    }
    site::insert(tx, &record).await?;
    let change = Change::created("site.registered", "site", &record.site_code, audit::to_json(&record)?)
        .within("", &record.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RegisterSiteResponse {
        site: Some(convert::site(&record)),
    })
}

pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListSitesRequest>,
) -> Result<pb::ListSitesResponse, AppError> {
    let req = request.into_inner();
    let scope = "sites";
    let page = pagination::page(req.page_size, &req.page_token, scope)?;
    let rows = site::list(&api.db, page.after.as_deref(), page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, scope, |s| s.site_code.clone());
    Ok(pb::ListSitesResponse {
        sites: rows.iter().map(convert::site).collect(),
        next_page_token,
    })
}
