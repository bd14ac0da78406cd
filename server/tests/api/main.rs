//! Integration tests of the server: the real server on a free port, real
//! HTTP and Socket.IO clients, on SQLite and on PostgreSQL.

mod auth;
mod eviction;
mod hostile;
mod isolation;
mod limits;
mod openapi;
mod permissions;
mod polling;
mod realtime;
mod refusals;
mod rest;
mod retries;
mod security;
mod seq;
mod socket;
