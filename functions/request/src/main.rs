//! elevate request function.

fn main() {}
