//! `swinface launch`: starts this node's ranks of a data-parallel run as torchrun does
//! (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT set
//! for each), waits for them, and when one fails stops the others and exits non-zero.

use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long the other ranks get to stop on their own (they see the failed rank's abort at
/// their next collective) before they are killed.
const GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Processes (ranks) on this node; each gets LOCAL_RANK 0..N (and with CUDA, that GPU).
    #[arg(
        long = "nproc_per_node",
        visible_alias = "nproc-per-node",
        value_name = "N"
    )]
    pub nproc_per_node: usize,

    /// Nodes taking part; WORLD_SIZE = nnodes × nproc_per_node.
    #[arg(long, default_value_t = 1, value_name = "M")]
    pub nnodes: usize,

    /// This node's index, 0..nnodes; its ranks are node_rank × N .. node_rank × N + N - 1.
    #[arg(long = "node_rank", visible_alias = "node-rank", default_value_t = 0)]
    pub node_rank: usize,

    /// Host of node 0, where rank 0 hosts the rendezvous store.
    #[arg(
        long = "master_addr",
        visible_alias = "master-addr",
        default_value = "127.0.0.1"
    )]
    pub master_addr: String,

    #[arg(
        long = "master_port",
        visible_alias = "master-port",
        default_value_t = 29500
    )]
    pub master_port: u16,

    /// The swinface command every rank runs, after `--`: `-- train CONFIG.yaml ...`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => format!("{status}"),
    }
}

pub fn run(args: &LaunchArgs) -> Result<ExitCode> {
    if args.nproc_per_node == 0 || args.nnodes == 0 {
        bail!("--nproc_per_node and --nnodes must be at least 1");
    }
    if args.node_rank >= args.nnodes {
        bail!(
            "--node_rank {} is not below --nnodes {}",
            args.node_rank,
            args.nnodes
        );
    }
    if args.master_port == 0 {
        bail!("--master_port must name a port every rank can reach (not 0)");
    }
    let world_size = args.nnodes * args.nproc_per_node;
    let exe = std::env::current_exe().context("cannot find the swinface executable")?;

    // Ctrl-C reaches every rank (the terminal signals the process group) and they stop
    // after saving; this process keeps waiting for them.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
    }

    let mut children: Vec<(usize, Child)> = Vec::new();
    for local_rank in 0..args.nproc_per_node {
        let rank = args.node_rank * args.nproc_per_node + local_rank;
        let spawned = Command::new(&exe)
            .args(&args.command)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local_rank.to_string())
            .env("WORLD_SIZE", world_size.to_string())
            .env("LOCAL_WORLD_SIZE", args.nproc_per_node.to_string())
            .env("GROUP_RANK", args.node_rank.to_string())
            .env("MASTER_ADDR", &args.master_addr)
            .env("MASTER_PORT", args.master_port.to_string())
            .spawn();
        match spawned {
            Ok(child) => children.push((rank, child)),
            Err(e) => {
                stop(&mut children, Duration::ZERO);
                return Err(e).with_context(|| format!("cannot start rank {rank}"));
            }
        }
    }

    let mut failure: Option<(usize, ExitStatus)> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            let (rank, child) = &mut children[i];
            match child.try_wait() {
                Ok(Some(status)) => {
                    let rank = *rank;
                    children.remove(i);
                    if !status.success() && failure.is_none() {
                        eprintln!(
                            "launch: rank {rank} failed ({}); stopping the other {} rank(s)",
                            describe(status),
                            children.len()
                        );
                        failure = Some((rank, status));
                        stop(&mut children, GRACE);
                    }
                }
                Ok(None) => i += 1,
                Err(e) => {
                    let rank = *rank;
                    stop(&mut children, Duration::ZERO);
                    return Err(e).with_context(|| format!("cannot wait for rank {rank}"));
                }
            }
        }
        std::thread::sleep(POLL);
    }
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some((rank, status)) => {
            eprintln!("launch: stopped: rank {rank} failed ({})", describe(status));
            let code = status.code().unwrap_or(1).clamp(1, 255) as u8;
            Ok(ExitCode::from(code))
        }
    }
}

/// Gives `children` up to `grace` to exit on their own, then kills and reaps the rest.
fn stop(children: &mut Vec<(usize, Child)>, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !children.is_empty() {
        children.retain_mut(|(_, child)| !matches!(child.try_wait(), Ok(Some(_))));
        std::thread::sleep(POLL);
    }
    for (rank, child) in children.iter_mut() {
        if let Err(e) = child.kill() {
            eprintln!("launch: cannot kill rank {rank}: {e}");
        }
        let _ = child.wait();
    }
    children.clear();
}
