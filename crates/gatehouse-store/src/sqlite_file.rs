//! The SQLite database file holds password hashes, imported-secret hashes and token
//! digests, so only its owner may read it (`docs/security.md`, files on disk).
//!
//! gatehouse creates the file itself, empty and with mode 0600, before SQLite opens
//! it: SQLite's unix VFS then gives the `-wal` and `-shm` files it makes beside the
//! database the database file's own permissions, so they are 0600 too, whatever the
//! umask. Files an older version left readable by group or others (0644, SQLite's
//! default) are tightened to 0600 with a warning; a file gatehouse cannot tighten (it
//! belongs to someone else) only gets the warning, since refusing would stop a server
//! over a setting it cannot change.

use std::fs::{OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use gatehouse_core::StoreError;

/// The files SQLite keeps beside a database, by suffix.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Permission bits of group and others.
const GROUP_OTHER: u32 = 0o077;

/// Creates the database file at `path` with mode 0600 when it is missing, and
/// tightens it and its companions to 0600 where group or others may open them.
pub(crate) fn make_private(path: &Path) -> Result<(), StoreError> {
    let failed = |what: &str, file: &Path, e: std::io::Error| {
        StoreError::Other(format!(
            "cannot {what} the SQLite database {}: {e}",
            file.display()
        ))
    };
    // O_CREAT|O_EXCL: never follows a symlink, never truncates an existing database.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed("create", path, e)),
    }
    for file in std::iter::once(path.to_path_buf()).chain(COMPANIONS.iter().map(|s| companion(path, s))) {
        let mode = match std::fs::metadata(&file) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(e) if e.kind() == ErrorKind::NotFound && file != path => continue,
            // The database itself exists (it was just created or was there): not
            // found means a symlink to nowhere, where SQLite would create a 0644 file.
            Err(e) => return Err(failed("open", &file, e)),
        };
        if mode & GROUP_OTHER == 0 {
            continue;
        }
        match std::fs::set_permissions(&file, Permissions::from_mode(0o600)) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                was = format!("{:04o}", mode & 0o7777),
                "the SQLite file was readable by group or others: tightened to 0600"
            ),
            Err(e) => tracing::warn!(
                file = %file.display(),
                mode = format!("{:04o}", mode & 0o7777),
                error = %e,
                "the SQLite file is readable by group or others and cannot be tightened: run chmod 600 on it"
            ),
        }
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`gatehouse.db-wal`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let dir = std::env::temp_dir().join(format!("gatehouse-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir(&dir).expect("create a scratch directory");
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_database_owner_only() {
        let dir = Scratch::new("create");
        let db = dir.0.join("g.db");
        make_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
    }

    #[test]
    fn tightens_an_open_database_and_its_companions_without_touching_the_contents() {
        let dir = Scratch::new("tighten");
        let db = dir.0.join("g.db");
        for file in [db.clone(), companion(&db, "-wal"), companion(&db, "-shm")] {
            std::fs::write(&file, b"data").unwrap();
            std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        }
        make_private(&db).unwrap();
        for file in [db.clone(), companion(&db, "-wal"), companion(&db, "-shm")] {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
            assert_eq!(std::fs::read(&file).unwrap(), b"data");
        }
        assert!(!companion(&db, "-journal").exists());
    }

    #[test]
    fn a_symlink_to_nowhere_is_an_error() {
        let dir = Scratch::new("dangling");
        let db = dir.0.join("g.db");
        std::os::unix::fs::symlink(dir.0.join("missing/g.db"), &db).unwrap();
        let err = make_private(&db).unwrap_err().to_string();
        assert!(err.contains("g.db"), "{err}");
    }
}
