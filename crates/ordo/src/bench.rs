//! `ordo bench …`: throughput and latency measurements recorded in BENCHMARKS.md.
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::backend::Target;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {}

pub fn run(_target: &Target, cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {}
}
