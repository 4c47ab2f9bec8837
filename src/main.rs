//! The `promfed` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    promfed::cli::run(promfed::cli::Cli::parse())
}
