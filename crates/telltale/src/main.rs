//! The `telltale` binary: command line, configuration, wiring of store and HTTP API,
//! signals and shutdown.
//!
//! Inputs: flags, environment, the YAML file. Output: a running server (or a verdict on a
//! config file). The one design decision to know: the listener opens before the store, so
//! `/-/ready` answers 503 during WAL replay instead of connections being refused, and
//! shutdown closes the store only after the last in-flight request has finished.

mod config;
mod logs;
mod serve;
mod syslog;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  telltale serve                                   # 127.0.0.1:7070, data in ./telltale-data
  telltale serve --config telltale.yml --listen :7070 --data-dir /var/lib/telltale
  telltale check config telltale.yml               # validate a config file, exit 1 if invalid

Send it data (Prometheus remote_write, exposition text, Influx line protocol, OTLP/HTTP):
  curl --data-binary 'cpu,host=a usage=0.5' http://127.0.0.1:7070/write
  curl --data-binary 'up{job=\"x\"} 1' http://127.0.0.1:7070/api/v1/import/prometheus
Read it back:
  curl 'http://127.0.0.1:7070/api/v1/series?match[]=up'
  curl -g 'http://127.0.0.1:7070/api/v1/export?match[]={job=\"x\"}'

Environment: TELLTALE_LISTEN, TELLTALE_DATA_DIR, TELLTALE_MAX_BODY_SIZE override the file;
flags override both. RUST_LOG sets the log filter (default: info).";

/// Telltale: metrics, logs and alerts in one binary that speaks Prometheus, Influx and OTLP.
#[derive(Debug, Parser)]
#[command(name = "telltale", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: every API on one listener, data in one directory.
    #[command(after_help = EXAMPLES)]
    Serve {
        /// YAML configuration file (see telltale.example.yml).
        #[arg(long, value_name = "FILE", env = "TELLTALE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:7070 or :7070 [default: 127.0.0.1:7070].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Data directory [default: ./telltale-data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate files without running anything.
    #[command(subcommand)]
    Check(Check),
}

#[derive(Debug, Subcommand)]
enum Check {
    /// Validate a configuration file; names the offending key; exits 1 when invalid.
    #[command(after_help = "Example:\n  telltale check config telltale.yml")]
    Config {
        /// The YAML file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen, data_dir } => {
            let flags = config::Overrides { listen, data_dir };
            match serve::run(config, flags) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("telltale: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check(Check::Config { file }) => {
            let env = std::env::vars().collect();
            match config::load(Some(&file), &env, &config::Overrides::default()) {
                Ok(_) => {
                    println!("SUCCESS: {} is valid", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
