//! Mutated Pod → ContainerRecord. (stub: being written)
