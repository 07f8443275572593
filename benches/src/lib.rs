//! Workloads shared by the benchmark binaries.
