//! The `umbra-registry` binary: everything is in [`umbra_registry::cli`].

fn main() -> std::process::ExitCode {
    umbra_registry::cli::main()
}
