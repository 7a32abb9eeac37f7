//! Identity and authorization: who calls (JWT, mutual TLS, the development seam) and what
//! each role may call (the contracts' access policy).

pub mod auth;
pub mod policy;
pub mod tls;
