//! The `swinface` command line.

mod bench;
mod bench_data;
mod bench_forward;
mod bench_train;
mod cli;
mod data_check;
mod eval;
mod infer;
mod launch;
mod synth;
mod tensorboard;
mod train;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc for Rust and, through its unprefixed `malloc` family, for libtorch's CPU
/// tensors too: glibc returns each large freed block to the kernel and faults it in again
/// on the next step; jemalloc keeps it for reuse.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start from this symbol (the `MALLOC_CONF` environment
/// variable still overrides them). Freed pages are never handed back: with any decay,
/// the activations and gradients of every step (hundreds of MB) are purged and faulted in
/// again, and the train step is ~1.3x slower (BENCHMARKS.md); a training process reaches
/// its peak in the first step and stays there, so nothing is lost by keeping it.
#[export_name = "malloc_conf"]
static MALLOC_CONF: MallocConf = MallocConf(c"dirty_decay_ms:-1,muzzy_decay_ms:-1".as_ptr());

/// A C string pointer that may be a static.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: it points to an immutable C string literal.
unsafe impl Sync for MallocConf {}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Logs go to stderr so that stdout carries only results.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();

    let result = match &cli.command {
        cli::Command::Train(args) => train::run(args),
        cli::Command::Launch(args) => launch::run(args),
        cli::Command::Infer(args) => infer::run(args),
        cli::Command::Data(command) => data_check::run(command),
        cli::Command::Eval(args) => eval::run(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Bench(command) => bench::run(command).map(|()| ExitCode::SUCCESS),
        cli::Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", render_error(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the line already holds
/// (some errors repeat their source in their own message).
fn render_error(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
