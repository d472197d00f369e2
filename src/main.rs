#![forbid(unsafe_code)]

/// mimalloc instead of the system allocator: a request makes a few dozen small allocations,
/// and mimalloc's per-thread free lists serve them in a fraction of glibc malloc's instructions
/// (BENCHMARKS.md, fifth round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dataverse_gateway::cli::main()
}
