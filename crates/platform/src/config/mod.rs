//! Configuration: settings (defaults, file, environment), the protocol definitions and files
//! kept private.

pub mod private_files;
pub mod protocols;
pub mod settings;
