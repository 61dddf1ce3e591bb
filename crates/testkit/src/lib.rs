//! Test harness: a moto server on a free port, unique resource names.
