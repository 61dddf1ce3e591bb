//! elevate escalate function.

fn main() {}
