//! The `fcsink` program, built inside this package so the tests can run
//! it as a process (`CARGO_BIN_EXE_fcsink-under-test`) and kill it.

fn main() -> std::process::ExitCode {
    fcsink::cli::main()
}
