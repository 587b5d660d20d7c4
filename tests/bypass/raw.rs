//! The raw HTTP/2 client of tests/clients/raw, for what tonic will not send: a `:path`
//! without its leading slash, CRI calls with hand-encoded messages.

#[path = "../clients/raw/frame.rs"]
pub mod frame;
#[path = "../clients/raw/grpc.rs"]
pub mod grpc;
#[path = "../clients/raw/h2.rs"]
pub mod h2;
#[path = "../clients/raw/hpack.rs"]
pub mod hpack;
