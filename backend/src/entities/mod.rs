//! sea-orm entities, one per table of the initial migration.
pub mod api_token;
pub mod cluster;
pub mod depot;
pub mod event;
pub mod notification;
pub mod organization;
pub mod part;
pub mod repair_record;
pub mod rma;
pub mod rma_counter;
pub mod rma_watcher;
pub mod shipment;
pub mod site;
pub mod slot;
pub mod unit;
pub mod user;
