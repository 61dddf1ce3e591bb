//! elevate approve function.

fn main() {}
