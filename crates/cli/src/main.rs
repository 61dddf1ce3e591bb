//! The elevate command-line tool.

fn main() {}
