//! elevate revoke function.

fn main() {}
