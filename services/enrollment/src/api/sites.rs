//! RegisterSite and ListSites.

use chrono::SubsecRound;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tonic::Request;
use trialops_domain::identifiers::SiteCode;
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency, pagination};
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
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.take(wire::parsed("site_code", SiteCode::parse(&req.site_code)));
    let name = v.take(wire::text("name", &req.name, 200));
    let (Some(request_id), Some(name)) = (request_id, name) else {
        return Err(v.into_error());
    };
    v.finish()?;

    let audit_ctx = AuditContext::new(call, request_id);
    let site_code = req.site_code.clone();
    idempotency::execute(&api.db, "EnrollmentService/RegisterSite", request_id, &req, move |tx| {
        Box::pin(async move {
            if site::Entity::find_by_id(site_code.clone()).one(tx).await?.is_some() {
                return Err(AppError::AlreadyExists {
                    reason: Reason::SiteAlreadyRegistered.into(),
                    message: format!("site {site_code} is already registered"),
                });
            }
            let record = site::Model {
                site_code: site_code.clone(),
                name,
                registered_at: trialops_platform::clock::now().trunc_subsecs(6),
            };
            site::Entity::insert(site::ActiveModel::from(record.clone()))
                .exec_without_returning(tx)
                .await?;
            audit::append(
                tx,
                &audit_ctx,
                Change {
                    action: "site.registered",
                    entity_type: "site",
                    entity_id: &site_code,
                    old: None,
                    new: audit::to_json(&record)?,
                    reason: "",
                },
            )
            .await?;
            Ok(pb::RegisterSiteResponse {
                site: Some(convert::site(&record)),
            })
        })
    })
    .await
}

pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListSitesRequest>,
) -> Result<pb::ListSitesResponse, AppError> {
    let req = request.into_inner();
    let scope = "sites";
    let page = pagination::page(req.page_size, &req.page_token, scope)?;
    let mut query = site::Entity::find().order_by_asc(site::Column::SiteCode);
    if let Some(after) = &page.after {
        query = query.filter(site::Column::SiteCode.gt(after.as_str()));
    }
    let rows = query.limit(page.size + 1).all(&api.db).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, scope, |s| s.site_code.clone());
    Ok(pb::ListSitesResponse {
        sites: rows.iter().map(convert::site).collect(),
        next_page_token,
    })
}
