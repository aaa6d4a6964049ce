//! The `crashcheck` command line: parses arguments and prints; the work
//! is the library's (see `src/cli/`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
