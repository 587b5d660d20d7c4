//! Sockets shared by the doors: unix listeners with ownership and mode, peer credentials,
//! and a unix-socket connector for HTTP clients.

pub(crate) mod cork;
pub mod h2;
pub(crate) mod listener;
pub(crate) mod peer;
pub(crate) mod unix;
