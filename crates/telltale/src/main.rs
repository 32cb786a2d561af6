//! The `telltale` binary: command line, configuration, wiring of store and HTTP API,
//! signals and shutdown.
//!
//! Inputs: flags, environment, the YAML file. Output: a running server (or a verdict on a
//! config file). The one design decision to know: the listener opens before the store, so
//! `/-/ready` answers 503 during WAL replay instead of connections being refused, and
//! shutdown closes the store only after the last in-flight request has finished.

mod agent;
mod alerting;
mod alloc;
mod authcli;
mod config;
mod listener;
mod logs;
mod otlpgrpc;
mod ruletool;
mod secrets;
mod serve;
mod syslog;
mod traces;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  telltale serve                                   # 127.0.0.1:7070, data in ./telltale-data
  telltale serve --config telltale.yml --data-dir /var/lib/telltale
  telltale serve --config telltale.yml --listen :7070   # all interfaces: needs auth.enabled
  telltale serve --web.config.file web.yml         # TLS and Basic users, as Prometheus
  telltale token create --service-account grafana --role viewer   # prints a token
  telltale check config telltale.yml               # validate a config file, exit 1 if invalid
  telltale check web-config web.yml                # validate a web config like promtool
  telltale check rules rules/*.yml                 # validate Prometheus rule files (promtool-like)
  telltale test rules tests.yml                    # run rule unit tests (promtool's format)

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
        /// Prometheus's web config file: TLS, Basic users (bcrypt), response headers. Re-read
        /// when it changes.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// Listen beyond loopback without authentication (only behind a trusted network or proxy:
        /// anyone reaching the port can read, write and delete data).
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Local users (for the web UI's login), in the data directory's auth store.
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens for machines (Grafana, shippers, scripts), in the data directory's auth store.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The key that seals credentials entered through the API or UI (receivers' webhook URLs,
    /// SMTP passwords).
    #[command(subcommand)]
    Secrets(SecretsCmd),
    /// Collect host metrics and scrape targets, shipping them by remote write to a server
    /// (buffered on disk while it is unreachable); tail the files of logs.files, pushing their
    /// lines to the server's Loki push API (offsets checkpointed once the server took them).
    #[command(
        after_help = "Example:\n  telltale agent --remote-write http://telltale.example:7070/api/v1/write --config agent.yml\n\n\
                      Log lines go to agent.logs_push_url, by default the remote-write URL with /api/v1/write\n\
                      replaced by /loki/api/v1/push (here http://telltale.example:7070/loki/api/v1/push)."
    )]
    Agent {
        /// Remote-write URL (e.g. http://HOST:7070/api/v1/write); overrides agent.remote_write_url.
        #[arg(long, value_name = "URL")]
        remote_write: Option<String>,
        /// YAML configuration file (collectors, global, scrape_configs, logs.files, agent sections).
        #[arg(long, value_name = "FILE", env = "TELLTALE_CONFIG")]
        config: Option<PathBuf>,
        /// Where the on-disk queue and the file offsets live [default: ./telltale-agent-data].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate files without running anything.
    #[command(subcommand)]
    Check(Check),
    /// Run unit tests.
    #[command(subcommand)]
    Test(TestCmd),
}

/// Which data directory (its auth store, its sealed secrets): the config's, or `--data-dir`.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// YAML configuration file (its storage.data_dir, auth and secrets sections).
    #[arg(long, value_name = "FILE", env = "TELLTALE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./telltale-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Add a local user; the password is the first line of --password-file (`-`: standard input).
    #[command(
        after_help = "Example:\n  echo 'a long password' | telltale user add alice --role editor --password-file -"
    )]
    Add {
        /// Login name (A-Z a-z 0-9 . _ @ -).
        name: String,
        /// viewer, editor or admin.
        #[arg(long)]
        role: String,
        /// Where to read the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token and print it (once) on standard output. A service account that does not
    /// exist yet is created with --role or --scopes.
    #[command(
        after_help = "Examples:\n  telltale token create --service-account vector --scopes ingest > /etc/vector/telltale-token\n  \
                            telltale token create --service-account grafana --role viewer --expires-in 90d\n  \
                            telltale token create --user alice --name laptop"
    )]
    Create {
        /// Owner: a service account (created if missing).
        #[arg(long, value_name = "NAME")]
        service_account: Option<String>,
        /// Owner: an existing user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// The token's scopes as a role: viewer, editor or admin.
        #[arg(long)]
        role: Option<String>,
        /// The token's scopes: ingest, read, edit, admin (comma-separated or repeated).
        #[arg(long)]
        scopes: Vec<String>,
        /// Bind the token to these tenants (repeatable); none: any tenant.
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
        /// What the token is for.
        #[arg(long)]
        name: Option<String>,
        /// Expiry, e.g. 90d; none: it does not expire.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the tokens (ids, owners, scopes; never the tokens).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The id `list` shows.
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCmd {
    /// Replace the key that seals stored secrets with a new one.
    ///
    /// Re-seals every stored secret's data key with a new key, then drops the old key from the
    /// key file (secrets.key_file, default DATA_DIR/secrets/key). Safe while the server runs; a
    /// rotation cut off halfway loses nothing and finishes when run again. Back up the new key
    /// file afterwards: the old one no longer opens anything.
    #[command(after_help = "Example:\n  telltale secrets rotate-key --config telltale.yml")]
    RotateKey {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TestCmd {
    /// Unit-test rules with promtool's test file format (input_series, alert_rule_test,
    /// promql_expr_test); exits 1 if any test fails.
    #[command(after_help = "Example:\n  telltale test rules tests.yml")]
    Rules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Check {
    /// Validate a configuration file; names the offending key; exits 1 when invalid.
    #[command(after_help = "Example:\n  telltale check config telltale.yml")]
    Config {
        /// The YAML file.
        file: PathBuf,
    },
    /// Validate Prometheus rule files like promtool; exits 1 if any is invalid.
    #[command(after_help = "Example:\n  telltale check rules rules/*.yml")]
    Rules {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate web config files (TLS, Basic users, headers) like promtool check web-config.
    #[command(name = "web-config", after_help = "Example:\n  telltale check web-config web.yml")]
    WebConfig {
        /// Web config files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    alloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen, data_dir, web_config_file, insecure_no_auth } => {
            let flags = config::Overrides { listen, data_dir, web_config_file, insecure_no_auth };
            match serve::run(config, flags) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("telltale: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agent { remote_write, config, data_dir } => match agent::run(remote_write, config, data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("telltale: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check(Check::Rules { files }) => exit(ruletool::check(&files)),
        Command::Check(Check::WebConfig { files }) => exit(authcli::check_web_config(&files)),
        Command::User(UserCmd::Add { name, role, password_file, store }) => {
            report(authcli::user_add(store.config.as_deref(), store.data_dir, &name, &role, &password_file))
        }
        Command::User(UserCmd::List { store }) => report(authcli::user_list(store.config.as_deref(), store.data_dir)),
        Command::Token(TokenCmd::Create { service_account, user, role, scopes, tenants, name, expires_in, store }) => {
            let r = authcli::TokenRequest { service_account, user, role, scopes, tenants, name, expires_in };
            report(authcli::token_create(store.config.as_deref(), store.data_dir, r))
        }
        Command::Token(TokenCmd::List { store }) => {
            report(authcli::token_list(store.config.as_deref(), store.data_dir))
        }
        Command::Token(TokenCmd::Revoke { id, store }) => {
            report(authcli::token_revoke(store.config.as_deref(), store.data_dir, &id))
        }
        Command::Secrets(SecretsCmd::RotateKey { store }) => {
            report(secrets::rotate_key(store.config.as_deref(), store.data_dir))
        }
        Command::Test(TestCmd::Rules { files }) => exit(ruletool::test(&files)),
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

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telltale: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
