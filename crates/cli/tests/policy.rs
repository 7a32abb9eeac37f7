//! The role policy, RPC by RPC and role by role, through the three real servers in JWT mode:
//! every RPC of the contracts has a policy entry, and every (RPC, role) pair is refused with
//! PERMISSION_DENIED exactly when the policy says so. Spot checks restate what the contracts
//! allow independently of the table.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use trialops_platform::identity::auth::Role;
use trialops_platform::identity::policy::{POLICY, allows};
use trialops_platform::testing::{Backend, RunningServer, jwt_settings, jwt_token, jwt_token_with_header};
use trialops_stack::Service;
use trialops_stack::testing::TestStack;

fn token(role: Role) -> String {
    jwt_token("tester", role.as_str(), Some("COG-101"))
}

fn settings(dir: &std::path::Path) -> trialops_platform::Settings {
    jwt_settings(trialops_platform::Settings {
        listen_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_owned(),
        ..trialops_platform::Settings::default()
    })
}

/// Calls `path` with an empty request and the role's token; returns the status code.
async fn call(url: &str, path: &str, role: Role) -> Code {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    let value = format!("Bearer {}", token(role)).parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = path.parse::<PathAndQuery>().unwrap();
    // The one server-streaming RPC answers with its headers and then streams until cancelled:
    // admitted is OK (the stream is dropped), refused is the status.
    let answer = if path.path().ends_with("/WatchEvents") {
        grpc.server_streaming(request, path, codec).await.map(|_| ())
    } else {
        grpc.unary(request, path, codec).await.map(|_| ())
    };
    match answer {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[test]
fn every_rpc_of_the_contracts_has_a_policy() {
    let set = prost_types::FileDescriptorSet::decode(trialops_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("trialops.")) {
        for service in &file.service {
            for method in &service.method {
                rpcs.push(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
            }
        }
    }
    assert_eq!(rpcs.len(), POLICY.len(), "the policy lists exactly the contracts' RPCs");
    for rpc in rpcs {
        assert!(POLICY.iter().any(|(p, _)| *p == rpc), "{rpc} has no policy entry");
    }
}

/// Each RPC's `(trialops.common.v1.access)` option, read as an integrator reads it from the
/// descriptor set the servers publish through reflection: the full method path and the role
/// claim values it names (the value's name without `ROLE_`, in lower case).
fn contract_roles() -> Vec<(String, Vec<String>)> {
    let pool = prost_reflect::DescriptorPool::decode(trialops_proto::FILE_DESCRIPTOR_SET).unwrap();
    let access = pool
        .get_extension_by_name("trialops.common.v1.access")
        .expect("the access option is in the descriptor set");
    let role = pool.get_enum_by_name("trialops.common.v1.Role").expect("a Role enum");
    let mut out = Vec::new();
    for service in pool.services().filter(|s| s.package_name().starts_with("trialops.")) {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            assert!(options.has_extension(&access), "{path}: no access option");
            let policy = options.get_extension(&access);
            let message = policy.as_message().expect("an AccessPolicy message");
            let roles = message.get_field_by_name("roles").expect("a roles field");
            let names = roles
                .as_list()
                .expect("roles is a list")
                .iter()
                .map(|v| {
                    let number = v.as_enum_number().unwrap_or_else(|| panic!("{path}: {v:?}"));
                    let value = role
                        .get_value(number)
                        .unwrap_or_else(|| panic!("{path}: role {number}"));
                    value.name().trim_start_matches("ROLE_").to_lowercase()
                })
                .collect();
            out.push((path, names));
        }
    }
    out
}

#[test]
fn the_policy_is_what_the_contracts_access_options_say() {
    let contract = contract_roles();
    assert_eq!(contract.len(), POLICY.len(), "every RPC's contract names its roles");
    assert_eq!(contract.len(), 77, "the contracts' RPCs");
    for (path, listed) in contract {
        let mut expected: Vec<Role> = listed
            .iter()
            .map(|name| {
                Role::ALL
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .unwrap_or_else(|| panic!("{path}: {name:?} is not a role"))
            })
            .collect();
        expected.sort_by_key(|r| r.as_str());
        let mut enforced: Vec<Role> = Role::ALL.into_iter().filter(|r| allows(&path, *r)).collect();
        enforced.sort_by_key(|r| r.as_str());
        assert_eq!(enforced, expected, "{path}: the policy differs from the contract");
    }
}

#[test]
fn the_contracts_wording_holds() {
    for accrual in ["CloseAccrual", "OpenAccrual"] {
        let path = format!("/trialops.enrollment.v1.EnrollmentService/{accrual}");
        let allowed: Vec<Role> = Role::ALL.into_iter().filter(|r| allows(&path, *r)).collect();
        assert_eq!(allowed, [Role::Administrator], "{path}");
    }
    assert!(allows(
        "/trialops.enrollment.v1.EnrollmentService/RegisterSite",
        Role::Administrator
    ));
    assert!(!allows(
        "/trialops.enrollment.v1.EnrollmentService/RegisterSite",
        Role::Pharmacist
    ));
    assert!(!allows(
        "/trialops.enrollment.v1.EnrollmentService/GetAllocationSummary",
        Role::SiteCoordinator
    ));
    assert!(allows(
        "/trialops.enrollment.v1.EnrollmentService/GetAllocationSummary",
        Role::Statistician
    ));
    assert!(!allows(
        "/trialops.dosing.v1.DosingService/StartCycle",
        Role::Statistician
    ));
    assert!(!allows(
        "/trialops.dosing.v1.DosingService/ApplyDoseModification",
        Role::Pharmacist
    ));
    assert!(allows(
        "/trialops.outcomes.v1.OutcomesService/RecordResponseAssessment",
        Role::CentralReviewer
    ));
    // Central review is blinded to allocation: the agents a subject receives name the arm.
    assert!(!allows(
        "/trialops.dosing.v1.DosingService/GetCumulativeExposure",
        Role::CentralReviewer
    ));
    assert!(!allows(
        "/trialops.dosing.v1.DosingService/GetActiveTreatment",
        Role::CentralReviewer
    ));
    assert!(!allows(
        "/trialops.outcomes.v1.OutcomesService/GetTrialReport",
        Role::SiteCoordinator
    ));
    assert!(
        !allows(
            "/trialops.enrollment.v1.EnrollmentService/NotAnRpc",
            Role::Administrator
        ),
        "unknown RPCs are denied"
    );
    assert!(allows("/grpc.health.v1.Health/Check", Role::Pharmacist));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_and_role_is_enforced_by_the_servers() {
    let options = trialops_enrollment::Options {
        randomization_secret: Some(vec![7; 32]),
        ..Default::default()
    };
    let set = TestStack::start_with(Backend::Sqlite, options, |_, s| *s = jwt_settings(s.clone())).await;

    let mut checked = 0;
    for (path, _) in POLICY {
        let url = set.url(if path.contains(".enrollment.") {
            Service::Enrollment
        } else if path.contains(".dosing.") {
            Service::Dosing
        } else {
            Service::Outcomes
        });
        for role in Role::ALL {
            let code = call(&url, path, role).await;
            if allows(path, role) {
                assert_ne!(code, Code::PermissionDenied, "{path} should be open to {role:?}");
                assert_ne!(code, Code::Unauthenticated, "{path} {role:?}");
            } else {
                assert_eq!(code, Code::PermissionDenied, "{path} should be closed to {role:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, POLICY.len() * Role::ALL.len());
    set.stop().await;
}

/// Calls `path` on `url` with these `authorization` values (none, one or several).
async fn call_with(url: &str, path: &str, authorizations: &[String]) -> Code {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    for value in authorizations {
        let value = format!("Bearer {value}").parse().unwrap();
        request.metadata_mut().append("authorization", value);
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = path.parse::<PathAndQuery>().unwrap();
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_ambiguous_and_critical_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let options = trialops_enrollment::Options {
        randomization_secret: Some(vec![7; 32]),
        ..Default::default()
    };
    let enrollment = RunningServer::spawn(
        trialops_enrollment::build(settings(dir.path()), Default::default(), options)
            .await
            .unwrap(),
    );
    let url = enrollment.url();
    let admin = token(Role::Administrator);
    let list_sites = "/trialops.enrollment.v1.EnrollmentService/ListSites";
    // A method no server has: UNIMPLEMENTED once the caller is known, UNAUTHENTICATED before.
    let unknown = "/trialops.enrollment.v1.EnrollmentService/NotAnRpc";
    assert_eq!(
        call_with(&url, unknown, std::slice::from_ref(&admin)).await,
        Code::Unimplemented
    );
    assert_eq!(call_with(&url, unknown, &[]).await, Code::Unauthenticated);
    // Two authorization headers, each valid alone: ambiguous.
    assert_eq!(
        call_with(&url, list_sites, std::slice::from_ref(&admin)).await,
        Code::Ok
    );
    assert_eq!(
        call_with(&url, list_sites, &[admin.clone(), admin.clone()]).await,
        Code::Unauthenticated
    );
    // A token whose header makes an extension critical.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.crit = Some(vec!["exp-extension".into()]);
    let critical = jwt_token_with_header(header, "admin", "administrator", None);
    assert_eq!(call_with(&url, list_sites, &[critical]).await, Code::Unauthenticated);
    enrollment.stop().await;
}
