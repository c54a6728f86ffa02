//! A PostgreSQL server of the test's own (`initdb` and `pg_ctl` in a temporary
//! directory, on a free port), for tests that stop and start the database:
//! the shared server is never touched. As root, the tools run as the
//! `postgres` user (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

/// The PostgreSQL programs of this machine (Debian's layout, or PATH).
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin").join(name))
        .filter(|path| path.exists())
        .collect();
    versions.sort();
    versions.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.exists())
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A private PostgreSQL cluster, stopped and deleted when dropped.
pub struct PrivatePostgres {
    _dir: TempDir,
    data: PathBuf,
    port: u16,
    as_root: bool,
}

impl PrivatePostgres {
    /// Whether this machine can run one (`initdb` and `pg_ctl` found); says so
    /// on stdout when not.
    pub fn available() -> bool {
        let found = pg_bin("initdb").is_some() && pg_bin("pg_ctl").is_some();
        if !found {
            println!("skipped: initdb/pg_ctl not found (a private PostgreSQL is needed)");
        }
        found
    }

    /// Creates and starts a cluster with trust authentication on 127.0.0.1.
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let as_root = is_root();
        if as_root {
            // The postgres user must reach the directory.
            run(Command::new("chmod").args(["0755", path(dir.path())]), "chmod");
            std::fs::create_dir(&data).expect("data directory");
            run(
                Command::new("chown").args(["postgres:postgres", path(&data)]),
                "chown",
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("port").port();
        drop(listener);
        let pg = PrivatePostgres {
            _dir: dir,
            data,
            port,
            as_root,
        };
        pg.run_tool(
            "initdb",
            &[
                "-D",
                path(&pg.data),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        pg.resume();
        pg
    }

    fn run_tool(&self, tool: &str, args: &[&str]) {
        let program = pg_bin(tool).unwrap_or_else(|| panic!("{tool} not found"));
        let mut command = if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args);
        run(&mut command, tool);
    }

    /// A URL for database `postgres` as user `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a network partition would.
    pub fn stop(&self) {
        self.run_tool(
            "pg_ctl",
            &["-D", path(&self.data), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts the (stopped) server again, on the same port.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            path(&self.data)
        );
        let log = self.data.join("server.log");
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path(&self.data),
                "-o",
                &options,
                "-l",
                path(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        // pg_ctl -w waits for connections on the socket; give TCP a moment too.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private PostgreSQL does not accept connections");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(pg_ctl) = pg_bin("pg_ctl") {
            let mut command = if self.as_root {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(pg_ctl);
                command
            } else {
                Command::new(pg_ctl)
            };
            let _ = command
                .args(["-D", path(&self.data), "-m", "immediate", "stop"])
                .output();
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
