//! The master key that seals the signing keys at rest (the `master_key` setting):
//! given as a setting, read from the file `master_key_file` names, or read from (and
//! on first use created in) `gatehouse.master.key` beside a SQLite database.
//!
//! A key file is a secret like an SSH private key, and is treated like one
//! (`docs/security.md`, files on disk):
//! - A key file that group or others may open is refused, as ssh refuses such a
//!   private key, with the `chmod 600` that fixes it: a warning would leave the key
//!   readable, and it opens every signing key.
//! - The default file is never reached through a symbolic link: a link there,
//!   dangling or not, is an error. A key kept elsewhere is what `master_key_file` is
//!   for; that one may be a link (Kubernetes mounts secrets as links), and the file
//!   it points to is what is checked.
//! - The default file is created atomically and never retried in a loop: the key is
//!   written in full, with mode 0600, to a temporary file in the same directory, which
//!   is then linked into place with link(2). That neither follows nor replaces
//!   anything already at the path, so two processes starting at once agree on one
//!   key, and neither reads a half-written file.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use gatehouse_core::sealing::MasterKey;
use gatehouse_core::Random;

use crate::config::{ConfigError, MasterKeySource};

/// Longest key file read: a key is 44 base64 characters and a line break.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// The master key from its source.
pub fn load_master_key(source: &MasterKeySource, rng: &dyn Random) -> Result<MasterKey, ConfigError> {
    match source {
        MasterKeySource::Given(key) => Ok(key.clone()),
        MasterKeySource::Ephemeral => Ok(MasterKey::generate(rng)),
        MasterKeySource::Missing => return Err(MasterKeySource::missing()),
        MasterKeySource::NamedFile(path) => read_key_file(path, KeyFile::Named),
        MasterKeySource::File(path) => match read_key_file(path, KeyFile::Default) {
            Err(KeyFileError::NotFound) => create_key_file(path, rng),
            other => other,
        },
    }
    .map_err(|e| e.into_config(source))
}

/// Which key file is read: how links are treated, and which key an error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFile {
    /// `gatehouse.master.key` beside the SQLite database.
    Default,
    /// The file `master_key_file` names.
    Named,
}

/// Why a key file gave no key.
#[derive(Debug)]
enum KeyFileError {
    /// Nothing at the path (not even a link).
    NotFound,
    /// Anything else: what is wrong with the file at `path`.
    Unusable { path: PathBuf, problem: String },
}

impl KeyFileError {
    fn unusable(path: &Path, problem: impl Into<String>) -> Self {
        Self::Unusable {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// One line naming the setting behind the file.
    fn into_config(self, source: &MasterKeySource) -> ConfigError {
        let key = match source {
            MasterKeySource::NamedFile(_) => "master_key_file",
            _ => "master_key",
        };
        match self {
            Self::NotFound => ConfigError::new(key, "the key file does not exist"),
            Self::Unusable { path, problem } => {
                ConfigError::new(key, format!("the key file {} {problem}", path.display()))
            }
        }
    }
}

/// Reads the key in `path`, after checking that it is a regular file that only its
/// owner may open.
fn read_key_file(path: &Path, kind: KeyFile) -> Result<MasterKey, KeyFileError> {
    let unusable = |problem: String| KeyFileError::unusable(path, problem);
    let at_path = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound && kind == KeyFile::Default => {
            return Err(KeyFileError::NotFound)
        }
        Err(e) => return Err(unusable(format!("cannot be read: {e}"))),
    };
    let expected = if !at_path.file_type().is_symlink() {
        at_path
    } else if kind == KeyFile::Default {
        return Err(unusable(
            "is a symbolic link, which gatehouse does not follow there; remove it, or name the real \
             file with master_key_file"
                .into(),
        ));
    } else {
        std::fs::metadata(path)
            .map_err(|e| unusable(format!("is a symbolic link that cannot be followed: {e}")))?
    };
    // Checked before opening: opening a FIFO would wait for a writer.
    if !expected.is_file() {
        return Err(unusable("is not a regular file".into()));
    }
    let file = File::open(path).map_err(|e| unusable(format!("cannot be read: {e}")))?;
    let opened = file
        .metadata()
        .map_err(|e| unusable(format!("cannot be read: {e}")))?;
    // The file opened is the one checked above, not one swapped in since.
    if (opened.dev(), opened.ino()) != (expected.dev(), expected.ino()) {
        return Err(unusable("changed while it was being opened".into()));
    }
    let mode = opened.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(unusable(format!(
            "may be opened by group or others (mode {mode:04o}); run chmod 600 {}",
            path.display()
        )));
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(|e| unusable(format!("cannot be read: {e}")))?;
    MasterKey::from_base64(&text).map_err(|e| unusable(e.to_string()))
}

/// Creates the default key file with a new key, or reads the one another process
/// created first.
fn create_key_file(path: &Path, rng: &dyn Random) -> Result<MasterKey, KeyFileError> {
    let key = MasterKey::generate(rng);
    match write_new_key_file(path, &key, rng) {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs, once; never loop.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match read_key_file(path, KeyFile::Default) {
            Err(KeyFileError::NotFound) => Err(KeyFileError::unusable(
                path,
                "vanished while it was being created",
            )),
            other => other,
        },
        Err(e) => Err(KeyFileError::unusable(path, format!("cannot be created: {e}"))),
    }
}

/// Writes `key` to a new file at `path`, atomically and with mode 0600: in full to a
/// temporary file in the same directory, which is then linked into place with
/// link(2). That neither follows nor replaces anything at `path`: a file, a link or
/// a dangling link there is an error of kind [`ErrorKind::AlreadyExists`].
pub fn write_new_key_file(path: &Path, key: &MasterKey, rng: &dyn Random) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut suffix = [0u8; 8];
    rng.fill(&mut suffix);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let temporary = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));

    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    if written.is_ok() {
        // The new directory entry survives a crash too; best effort.
        let _ = File::open(dir).and_then(|dir| dir.sync_all());
    }
    written
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use gatehouse_core::SystemRandom;

    use super::*;

    fn default_source(dir: &Path) -> MasterKeySource {
        MasterKeySource::File(dir.join("gatehouse.master.key"))
    }

    #[test]
    fn creates_the_default_file_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let source = default_source(dir.path());
        let first = load_master_key(&source, &SystemRandom).unwrap();
        let again = load_master_key(&source, &SystemRandom).unwrap();
        assert_eq!(first.to_base64(), again.to_base64());
        let path = dir.path().join("gatehouse.master.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Only the key file is left: the temporary one is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dangling_link_at_the_default_path_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.master.key");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
        let err = load_master_key(&default_source(dir.path()), &SystemRandom).unwrap_err();
        assert_eq!(err.key, "master_key");
        assert!(err.problem.contains("symbolic link"), "{err}");
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn an_open_key_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, MasterKey::generate(&SystemRandom).to_base64()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_master_key(&MasterKeySource::NamedFile(path.clone()), &SystemRandom).unwrap_err();
        assert_eq!(err.key, "master_key_file");
        assert!(err.problem.contains("0640"), "{err}");
        assert!(err.problem.contains("chmod 600"), "{err}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        load_master_key(&MasterKeySource::NamedFile(path), &SystemRandom).unwrap();
    }

    #[test]
    fn a_named_file_is_never_created_and_may_be_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = load_master_key(&MasterKeySource::NamedFile(missing.clone()), &SystemRandom).unwrap_err();
        assert_eq!(err.key, "master_key_file");
        assert!(!missing.exists());

        let real = dir.path().join("real");
        let key = MasterKey::generate(&SystemRandom);
        std::fs::write(&real, format!("{}\n", key.to_base64())).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let read = load_master_key(&MasterKeySource::NamedFile(link), &SystemRandom).unwrap();
        assert_eq!(read.to_base64(), key.to_base64());
    }

    #[test]
    fn a_directory_is_not_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_master_key(
            &MasterKeySource::NamedFile(dir.path().to_path_buf()),
            &SystemRandom,
        )
        .unwrap_err();
        assert!(err.problem.contains("not a regular file"), "{err}");
    }
}
