#![forbid(unsafe_code)]

/// mimalloc: the request path allocates and frees many small objects per request (headers,
/// strings, futures); glibc's allocator spent about 13% of the gateway's instructions on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dataverse_gateway::cli::main()
}
