//! The decision core. (stub: being written)
