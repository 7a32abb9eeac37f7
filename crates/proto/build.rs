//! Generates the gRPC code and the reflection descriptor set from `proto/` without a system
//! `protoc`: protox parses the files, tonic-prost-build generates Rust from the descriptors.
//!
//! It also generates the access policy from the contracts: every RPC's
//! `(trialops.common.v1.access)` option becomes one row of `ACCESS_POLICY`. An RPC without the
//! option, or with no role in it, fails the build, so no RPC can ship without a policy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, Value};

const FILES: &[&str] = &[
    "trialops/common/v1/common.proto",
    "trialops/enrollment/v1/enrollment.proto",
    "trialops/dosing/v1/dosing.proto",
    "trialops/outcomes/v1/outcomes.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    // tonic-prost-build does not emit rerun-if-changed: without these lines every build would
    // regenerate, and with only some of them a changed contract would be missed.
    println!("cargo:rerun-if-changed=build.rs");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    let mut compiler = protox::Compiler::new([&root])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(FILES)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself, so the RPCs' custom options stay in the set reflection serves.
    std::fs::write(
        out_dir.join("trialops_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    std::fs::write(
        out_dir.join("access_policy.rs"),
        access_policy(&compiler.descriptor_pool())?,
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// `ROLE_SITE_COORDINATOR` → `SiteCoordinator`: the variant prost generates.
fn variant(value_name: &str) -> String {
    value_name
        .trim_start_matches("ROLE_")
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_string() + &chars.as_str().to_lowercase())
        })
        .collect()
}

fn access_policy(pool: &DescriptorPool) -> Result<String, Box<dyn std::error::Error>> {
    let access = pool
        .get_extension_by_name("trialops.common.v1.access")
        .ok_or("trialops.common.v1.access is not declared")?;
    let role = pool.get_enum_by_name("trialops.common.v1.Role").ok_or("no Role enum")?;
    let mut rows = String::new();
    for service in pool.services().filter(|s| s.package_name().starts_with("trialops.")) {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            if !options.has_extension(&access) {
                return Err(format!("{path} has no (trialops.common.v1.access) option").into());
            }
            let policy = options.get_extension(&access);
            let roles = policy
                .as_message()
                .and_then(|m| m.get_field_by_name("roles"))
                .and_then(|v| v.as_list().map(<[Value]>::to_vec))
                .unwrap_or_default();
            let mut names = Vec::new();
            for value in roles {
                let number = value.as_enum_number().ok_or("roles holds a non-enum value")?;
                let name = role.get_value(number).ok_or("unknown role number")?.name().to_owned();
                if name == "ROLE_UNSPECIFIED" {
                    return Err(format!("{path} allows ROLE_UNSPECIFIED").into());
                }
                names.push(format!("Role::{}", variant(&name)));
            }
            if names.is_empty() {
                return Err(format!("{path} allows no role").into());
            }
            writeln!(rows, "    (\"{path}\", &[{}]),", names.join(", "))?;
        }
    }
    Ok(format!(
        "/// `(full method path, roles allowed)` for every RPC of every trialops service, from each\n\
         /// RPC's `(trialops.common.v1.access)` option.\n\
         pub const ACCESS_POLICY: &[(&str, &[Role])] = &[\n{rows}];\n"
    ))
}
