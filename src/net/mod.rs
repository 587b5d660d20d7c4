//! Sockets shared by the doors: unix listeners with ownership and mode, peer credentials,
//! and a unix-socket connector for HTTP clients.

pub mod cork;
pub mod h2;
pub mod listener;
pub mod peer;
pub mod unix;
