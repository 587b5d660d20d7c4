//! The containerd door. (being written)
pub mod listener;
