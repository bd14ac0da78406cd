//! Integration tests of the server: the real server on a free port, real
//! HTTP and Socket.IO clients, on SQLite and on PostgreSQL.

mod auth;
mod openapi;
mod permissions;
mod realtime;
mod rest;
mod seq;
mod socket;
