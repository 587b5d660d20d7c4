//! The hook door: `portcullis hook` (an OCI runtime hook) and `portcullis runc` (a runc
//! wrapper) enforce the same policy below containerd, for runc, Podman and CRI-O.

pub(crate) mod daemon;
pub(crate) mod event;
pub(crate) mod gate;
pub(crate) mod install;
pub mod request;
pub(crate) mod runc;
pub(crate) mod state;
