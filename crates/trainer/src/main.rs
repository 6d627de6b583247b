//! The `swinface` command line.

mod bench;
mod bench_data;
mod bench_forward;
mod bench_train;
mod cli;
mod data_check;
mod eval;
mod infer;
mod synth;
mod tensorboard;
mod train;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

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
