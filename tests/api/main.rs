//! The JSON API against the real server: the lifecycle table row by row, the golden paths, tenant
//! isolation, concurrency, bad input and the operations endpoints.
mod helpers;

mod concurrency;
mod golden;
mod input;
mod isolation;
mod labels;
mod lifecycle;
mod ops;
