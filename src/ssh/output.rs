//! What a remote script left behind.

use std::fmt;

/// The exit status and output of a script run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOutput {
    /// The script's exit status; `None` when it exited with 255 or was killed by a signal,
    /// which OpenSSH reports identically.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

impl fmt::Display for RemoteOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) => write!(f, "exit status {code}")?,
            None => write!(f, "exit status 255 or killed by a signal")?,
        }
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            write!(f, ": {stderr}")?;
        }
        Ok(())
    }
}
