//! ringback: an outbound reminder and callback dialer for clinics.
//!
//! The pipeline reads top to bottom: campaigns and appointment lists come in ([`campaign`],
//! [`import`]), the pure [`plan`]ner decides when each attempt is due, [`store`] keeps the truth on
//! SQLite or PostgreSQL.

pub mod app;
pub mod callbacks;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod dial;
pub mod events;
pub mod http;
pub mod import;
pub mod jobs;
pub mod metrics;
pub mod outcomes;
pub mod outreach;
pub mod pace;
pub mod phone;
pub mod plan;
pub mod provider;
pub mod replies;
pub mod report;
pub mod runtime;
pub mod store;
pub mod visits;
