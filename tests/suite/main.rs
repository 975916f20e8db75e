//! Natter's integration tests, one binary (linking the whole stack once, not once per
//! file): each module tests one part against the real servers, NATS JetStream, Postgres
//! and an S3 server (`scripts/test` starts them). `common` sets each test up with a
//! stream, subject prefix and database of its own.

mod common;

mod api;
mod auth;
mod chats;
mod commands;
mod eventlog;
mod events;
mod faults;
mod gateway;
mod groups;
mod hostile_input;
mod jwt;
mod media;
mod message_extras;
mod messages;
mod nats;
mod projections;
mod push;
mod rebuild;
mod schemathesis;
mod web;
