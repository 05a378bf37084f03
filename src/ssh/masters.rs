//! SSH master connections that outlive one lbctl run, so that the next `plan` or `apply`
//! within the idle time skips the TCP connect, key exchange and login (OpenSSH's
//! `ControlPersist`, which Ansible uses by default for the same reason).
//!
//! Each master's control socket lives in a private directory (mode 0700, owned by the user);
//! a record per connection, named after a digest of everything that decides where and how
//! lbctl logs in, points at the socket. A record whose master has exited is ignored and
//! replaced. A resumed master is the connection that was authenticated, host key verified,
//! when it was opened.
//!
//! The network namespace lbctl runs in is part of that digest: a master reaches its host
//! through the network it was opened in, and in another namespace (a VRF entered with
//! `ip netns exec`, a container sharing the home directory) the same address may be another
//! machine, which a socket path, reachable from every namespace, would not tell.

use std::{
    fs,
    os::unix::{
        fs::{DirBuilderExt, MetadataExt, PermissionsExt},
        net::UnixStream,
    },
    path::{Path, PathBuf},
    time::Duration,
};

use sha2::{Digest, Sha256};

use crate::spec::Connection;

/// Where openssh puts each master's socket: `<directory>/.ssh-connectionXXXXXX/master`.
const MASTER_PREFIX: &str = ".ssh-connection";

/// Longer than any connect takes (twice the longest sensible connect timeout, and then some).
const SETTLE: Duration = Duration::from_secs(600);

/// Where masters are kept unless the user says otherwise: `$XDG_RUNTIME_DIR/lbctl-ssh`,
/// else `~/.local/state/lbctl/ssh`, else a directory under /tmp named after the user.
pub fn default_masters_directory() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("lbctl-ssh"))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/lbctl/ssh"))
        })
        // SAFETY: geteuid has no preconditions and cannot fail.
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/lbctl-ssh-{}", unsafe { libc::geteuid() })))
}

pub struct Directory {
    path: PathBuf,
}

/// Whether `path` can hold the masters' sockets: missing (lbctl creates it, mode 0700), or a
/// directory of this user's that no one else may enter (not a link to one). lbctl changes
/// the mode of no directory it did not create: `--ssh-control-dir /etc` made /etc mode 0700.
pub fn check_masters_directory(path: &Path) -> Result<(), MastersDirectoryError> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(MastersDirectoryError::Look(e)),
        Ok(meta) => meta,
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.file_type().is_symlink() {
        Err(MastersDirectoryError::Link)
    } else if !meta.is_dir() {
        Err(MastersDirectoryError::NotDirectory)
    } else if meta.uid() != me {
        Err(MastersDirectoryError::Owner { uid: meta.uid() })
    } else if meta.permissions().mode() & 0o077 != 0 {
        Err(MastersDirectoryError::Shared {
            mode: meta.permissions().mode() & 0o7777,
        })
    } else {
        Ok(())
    }
}

/// Why a directory cannot hold the masters' sockets.
#[derive(Debug, thiserror::Error)]
pub enum MastersDirectoryError {
    #[error("cannot look at it: {0}")]
    Look(std::io::Error),
    #[error("it is a symbolic link; name the directory itself")]
    Link,
    #[error("it is not a directory")]
    NotDirectory,
    #[error("it belongs to user {uid}, not to this one")]
    Owner { uid: u32 },
    #[error(
        "other users may enter it (mode {mode:o}); lbctl keeps SSH control sockets only in a directory of mode 0700 (chmod 700 it, or name a new directory: lbctl creates it)"
    )]
    Shared { mode: u32 },
}

impl Directory {
    /// `path`, created when missing. `None` (no reuse) when it is not private to this user
    /// ([`check_masters_directory`]).
    pub fn open(path: &Path) -> Option<Directory> {
        if fs::symlink_metadata(path).is_err() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .ok()?;
        }
        check_masters_directory(path).ok()?;
        Some(Directory {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master an earlier run left open for `conn`, when it is still there.
    pub fn resume(&self, conn: &Connection) -> Option<openssh::Session> {
        let socket = fs::read_link(self.record(conn)).ok()?;
        // Only sockets openssh made in this private directory are trusted.
        if socket.parent()?.parent()? != self.path {
            return None;
        }
        // The master accepts on its socket for as long as it runs; a stale socket refuses.
        UnixStream::connect(&socket).ok()?;
        let log = socket.with_file_name("log");
        Some(openssh::Session::resume_mux(
            socket.into_boxed_path(),
            Some(log.into_boxed_path()),
        ))
    }

    /// Records `socket` as `conn`'s master for later runs.
    pub fn remember(&self, conn: &Connection, socket: &Path) {
        let record = self.record(conn);
        let staged = record.with_extension(format!("new{}", std::process::id()));
        let _ = fs::remove_file(&staged);
        if std::os::unix::fs::symlink(socket, &staged).is_ok()
            && fs::rename(&staged, &record).is_err()
        {
            let _ = fs::remove_file(&staged);
        }
    }

    /// Removes what masters that have exited left behind: their directories (log, no socket)
    /// and the records pointing at them. A directory younger than [`SETTLE`] may belong to a
    /// master still connecting (this run's or another's), so it stays.
    pub fn forget_exited(&self) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && name.to_string_lossy().starts_with(MASTER_PREFIX) {
                let settled = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > SETTLE);
                if settled && !path.join("master").exists() {
                    let _ = fs::remove_dir_all(&path);
                }
            } else if kind.is_symlink() && is_record_name(&name) && fs::metadata(&path).is_err() {
                let _ = fs::remove_file(&path);
            }
        }
    }

    fn record(&self, conn: &Connection) -> PathBuf {
        self.path.join(key(conn, &network_namespace()))
    }
}

/// Whether `name` is one [`Directory::record`] gives: only such links are lbctl's to remove.
fn is_record_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.len() == 32 && name.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The network namespace this thread runs in (the one the `ssh` it starts will use), as the
/// kernel names it (`net:[4026531840]`); empty where `/proc` does not say.
fn network_namespace() -> String {
    ["/proc/thread-self/ns/net", "/proc/self/ns/net"]
        .iter()
        .find_map(|link| fs::read_link(link).ok())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A digest of everything that decides which host lbctl reaches and how it logs in (the
/// network it goes through included), so that a changed inventory never reuses a master
/// opened under other settings.
fn key(conn: &Connection, network: &str) -> String {
    let mut digest = Sha256::new();
    let mut field = |value: &[u8]| {
        digest.update((value.len() as u64).to_le_bytes());
        digest.update(value);
    };
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
            .unwrap_or_default()
    };
    field(conn.address.as_bytes());
    field(
        conn.port
            .map(|p| p.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    field(conn.user.as_deref().unwrap_or_default().as_bytes());
    field(&path(&conn.private_key));
    field(&path(&conn.known_hosts));
    field(&path(&conn.ssh_config));
    field(format!("{:?}", conn.strict_host_keys).as_bytes());
    field(network.as_bytes());
    let sum = digest.finalize();
    sum.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::HostKeyPolicy;

    fn conn(address: &str) -> Connection {
        Connection {
            name: "lb1".into(),
            address: address.into(),
            port: Some(22),
            user: Some("root".into()),
            private_key: None,
            known_hosts: None,
            ssh_config: None,
            become_root: false,
            strict_host_keys: HostKeyPolicy::Strict,
        }
    }

    #[test]
    fn the_key_changes_with_anything_that_decides_the_login() {
        const NET: &str = "net:[4026531840]";
        let key = |conn: &Connection| key(conn, NET);
        let base = conn("10.0.0.1");
        assert_eq!(key(&base), key(&conn("10.0.0.1")));
        assert_eq!(key(&base).len(), 32);
        let mut other = base.clone();
        other.address = "10.0.0.2".into();
        assert_ne!(key(&base), key(&other));
        let mut other = base.clone();
        other.user = Some("admin".into());
        assert_ne!(key(&base), key(&other));
        let mut other = base.clone();
        other.known_hosts = Some("/tmp/kh".into());
        assert_ne!(key(&base), key(&other));
        let mut other = base.clone();
        other.strict_host_keys = HostKeyPolicy::AcceptNew;
        assert_ne!(key(&base), key(&other));
        // The same login from another network namespace may reach another machine.
        assert_ne!(key(&base), super::key(&base, "net:[4026532999]"));
        // The inventory name is only a label: the same login under another name is the same
        // connection.
        let mut other = base.clone();
        other.name = "renamed".into();
        assert_eq!(key(&base), key(&other));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbctl-masters-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        dir
    }

    /// `--ssh-control-dir /etc` made /etc mode 0700 and removed its dangling links.
    #[test]
    fn a_directory_others_may_enter_is_left_as_it_is_and_not_used() {
        let dir = scratch("shared");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.join("dangling")).unwrap();
        assert!(Directory::open(&dir).is_none());
        let e = check_masters_directory(&dir).unwrap_err().to_string();
        assert!(e.contains("mode 755") && e.contains("chmod 700"), "{e}");
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(fs::symlink_metadata(dir.join("dangling")).is_ok());
        std::os::unix::fs::symlink(&dir, dir.with_extension("link")).unwrap();
        let link = check_masters_directory(&dir.with_extension("link"))
            .unwrap_err()
            .to_string();
        assert!(link.contains("symbolic link"), "{link}");
        fs::remove_file(dir.with_extension("link")).unwrap();
        assert!(check_masters_directory(&dir.join("new/one")).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_links_named_as_records_are_forgotten() {
        let dir = scratch("private");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let record = key(&conn("10.0.0.1"), "net");
        std::os::unix::fs::symlink("/nonexistent", dir.join(&record)).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.join("known_hosts")).unwrap();
        Directory::open(&dir).unwrap().forget_exited();
        assert!(fs::symlink_metadata(dir.join(&record)).is_err());
        assert!(fs::symlink_metadata(dir.join("known_hosts")).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_network_namespace_is_read_from_proc() {
        assert!(
            network_namespace().starts_with("net:["),
            "{}",
            network_namespace()
        );
    }
}
