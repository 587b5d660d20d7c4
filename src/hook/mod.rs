//! The hook door: `portcullis hook` (an OCI runtime hook) and `portcullis runc` (a runc
//! wrapper) enforce the same policy below containerd, for runc, Podman and CRI-O.

pub mod daemon;
pub mod event;
pub mod gate;
pub mod install;
pub mod request;
pub mod runc;
pub mod state;
