#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    dataverse_gateway::cli::main()
}
