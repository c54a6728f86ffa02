//! The `gatehouse` binary.

use std::process::ExitCode;

use gatehouse::cli::{Cli, Command};
use gatehouse::config::Settings;
use gatehouse::server::{shutdown_signal, ServeError, Server};
use gatehouse::{admin, telemetry};

/// mimalloc: per-thread free lists suit a server whose requests make many small,
/// short-lived allocations on several threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse_with_settings();
    let loaded = match &cli.command {
        Command::Serve => Settings::load_for_serving(&cli.config),
        _ => Settings::load(&cli.config),
    };
    let settings = match loaded {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gatehouse: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => {
                let _log_guard = telemetry::init_logging(settings.log_format);
                // Signals are caught before the server binds and says it listens.
                let shutdown = shutdown_signal();
                // The real clock, always: no setting can swap it for another.
                let clock = std::sync::Arc::new(gatehouse_core::SystemClock);
                let served = match Server::bind(&settings, clock).await {
                    Ok(server) => server.run(shutdown).await,
                    Err(err) => Err(err),
                };
                match served {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(ServeError::Config(err)) => {
                        eprintln!("{err}");
                        ExitCode::from(2)
                    }
                    Err(err) => {
                        eprintln!("{err}");
                        ExitCode::from(1)
                    }
                }
            }
            command => {
                let result = match command {
                    Command::Client(c) => admin::client(&settings, c).await,
                    Command::Keys(k) => admin::keys(&settings, k).await,
                    Command::User(u) => admin::user(&settings, u).await,
                    Command::Token(t) => admin::token(&settings, t).await,
                    Command::Migrate(json) => admin::migrate(&settings, json).await,
                    Command::Serve => Ok(()),
                };
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("{err}");
                        ExitCode::from(err.status)
                    }
                }
            }
        }
    })
}
