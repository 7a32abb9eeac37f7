//! Generates the gRPC code and the reflection descriptor set from `proto/` without a system
//! `protoc`: protox parses the files, tonic-prost-build generates Rust from the descriptors.

use std::path::{Path, PathBuf};

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

    let descriptors = protox::compile(FILES, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("trialops_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
