//! The elevate command-line tool.

use std::process::ExitCode;

use clap::Parser;
use elevate::cli::Cli;

fn main() -> ExitCode {
    elevate::commands::run(Cli::parse())
}
