//! ContainerRecord → v1 Pod. (stub: being written)
