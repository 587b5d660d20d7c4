//! TLS for `serve` listeners (being written).
