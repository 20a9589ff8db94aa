//! `ordo`, the command-line front of the engine: master data, one movement per call, stock and
//! available-to-sell queries, verification, the demo and the benchmarks. The composition root:
//! it picks the store, opens the engine and prints results; decisions live in the domain.

mod backend;
mod bench;
mod bench_finance;
mod bench_http;
mod bench_orders;
mod bench_relay;
mod cli;
mod demo;
mod demo_orders;
mod documents;
mod edi;
mod relays;
mod report;

use std::process::ExitCode;

/// The engine allocates on one thread and frees on another (a decided batch is committed, then
/// dropped, by the committing thread); mimalloc handles that pattern without glibc's slow paths.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> ExitCode {
    // `ordo orders | head` should end quietly when the reader goes away, as other Unix tools do,
    // not panic on a broken pipe: restore the default SIGPIPE action Rust's runtime ignores.
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    disable_transparent_huge_pages();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// No transparent huge pages for this process (what mimalloc's `allow_thp=0` does, and what
/// Redis and MongoDB ask of their hosts): mimalloc advises its arenas for huge pages, and each
/// page it frees and later reuses was faulted back in as a fresh 2 MiB page, zeroed whole. With
/// the engine's heap growing by the order book, that zeroing took ~28 % of the engine thread;
/// without it, `ordo bench orders --decide-only` runs ~40 % faster (BENCHMARKS.md, issue 4).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; a kernel
    // without it answers EINVAL, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
