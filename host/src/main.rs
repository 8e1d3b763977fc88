//! The `fcsink` binary; everything is in the library (`fcsink::cli`).

fn main() -> std::process::ExitCode {
    fcsink::cli::main()
}
