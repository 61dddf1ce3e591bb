//! elevate example-target function.

fn main() {}
