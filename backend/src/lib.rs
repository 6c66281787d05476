//! depot: RMA and hardware-depot lifecycle system.

/// The router and server startup.
pub mod app;
/// Settings from the environment.
pub mod config;
/// Database connection and write transactions.
pub mod db;
/// Printable labels and packing slips.
pub mod documents;
/// Business rules without HTTP or SQL: the lifecycle table and the replacement policy.
pub mod domain;
/// sea-orm entities.
pub mod entities;
/// The error type and its HTTP rendering.
pub mod error;
/// Scheduled work: return reminders and SLA alerts.
pub mod jobs;
/// Notifications: composing, queueing, delivering.
pub mod mail;
/// Calls to other systems, kept to where an operator meant them to go.
pub mod outbound;
/// Credentials sealed at rest.
pub mod secrets;
/// Use cases, each in one transaction with the acting user.
pub mod services;
/// What every request handler can reach.
pub mod state;
/// HTTP routes and extractors.
pub mod web;
