//! The JSON API against the real server: the lifecycle table row by row, the golden paths, tenant
//! isolation and the authorization matrix, concurrency, bad input and the operations endpoints.
// Shared with the other test binaries, which use parts this one does not.
#[allow(dead_code)]
mod helpers;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod carriers;
mod concurrency;
mod depot_ops;
mod field;
mod fuzz;
mod golden;
mod input;
mod isolation;
mod labels;
mod lifecycle;
mod matrix;
mod ops;
mod properties;
mod redfish;
mod reliability;
mod security;
mod sla;
mod slack;
