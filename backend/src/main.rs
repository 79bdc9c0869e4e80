//! The `porthole` command; everything it does is in [`porthole::cli`].

fn main() -> std::process::ExitCode {
    porthole::cli::main()
}
