//! HTTP: one module per resource, each with its `routes()`, and the extractors they share.
pub mod carriers;
pub mod depot;
pub mod extract;
pub mod field;
pub mod labels;
pub mod lifecycle;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod redfish;
pub mod reports;
pub mod rmas;
pub mod slack;
pub mod units;
