//! A script under way on a host: its output read as it comes, an answer written to it.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{RemoteOutput, TransportError, session::Link};

/// A script that is running on a host: see [`Session::start`](super::Session::start).
pub struct Running {
    pub(super) link: Link,
    pub(super) child: openssh::Child<Link>,
    pub(super) stdin: Option<openssh::ChildStdin>,
    pub(super) stdout: Option<tokio::io::BufReader<openssh::ChildStdout>>,
    /// Everything read from stdout so far.
    pub(super) seen: Vec<u8>,
    pub(super) stderr: tokio::task::JoinHandle<std::io::Result<Vec<u8>>>,
}

impl Running {
    /// Reads stdout up to and including the first line that is exactly `line`: `true`, or
    /// `false` when stdout ended first. Whatever was read is kept for [`Running::finish`].
    pub async fn read_until(&mut self, line: &[u8]) -> Result<bool, TransportError> {
        Ok(self.read_until_any(&[line]).await?.is_some())
    }

    /// [`Running::read_until`] for whichever of `lines` comes first: its index, or `None`
    /// when stdout closed before any.
    pub async fn read_until_any(
        &mut self,
        lines: &[&[u8]],
    ) -> Result<Option<usize>, TransportError> {
        let link = &self.link;
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(None);
        };
        loop {
            let start = self.seen.len();
            let read = stdout
                .read_until(b'\n', &mut self.seen)
                .await
                .map_err(|e| link.io_error(&e))?;
            if read == 0 {
                return Ok(None);
            }
            let got = &self.seen[start..];
            let got = got.strip_suffix(b"\n").unwrap_or(got);
            let got = got.strip_suffix(b"\r").unwrap_or(got);
            if let Some(index) = lines.iter().position(|line| *line == got) {
                return Ok(Some(index));
            }
        }
    }

    /// Takes what the script printed on stdout so far, leaving [`Running::finish`] only what
    /// comes after: for one shell running two scripts, each with its own report.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.seen)
    }

    /// Everything the script printed on stdout so far.
    pub fn output(&self) -> &[u8] {
        &self.seen
    }

    /// Writes `text` to the script's stdin and leaves it open: the next script for a shell
    /// whose first one (run as the remote layer's `first_part` wraps it) has ended.
    pub async fn send(&mut self, text: &str) -> Result<(), TransportError> {
        self.write(text.as_bytes()).await
    }

    /// Writes `text` to the script's stdin and closes it.
    pub async fn answer(&mut self, text: &str) -> Result<(), TransportError> {
        self.write(text.as_bytes()).await?;
        self.stdin = None;
        Ok(())
    }

    /// Closes stdin, reads the rest of the output and waits for the script to exit.
    pub async fn finish(mut self) -> Result<RemoteOutput, TransportError> {
        self.stdin = None;
        if let Some(mut stdout) = self.stdout.take() {
            stdout
                .read_to_end(&mut self.seen)
                .await
                .map_err(|e| self.io_error(&e))?;
        }
        let stderr = match self.stderr.await {
            Ok(Ok(stderr)) => stderr,
            Ok(Err(e)) => return Err(self.link.io_error(&e)),
            Err(e) => return Err(self.link.io_error(&std::io::Error::other(e))),
        };
        let link = self.link;
        let status = match self.child.wait().await {
            Ok(status) => status.code(),
            Err(openssh::Error::RemoteProcessTerminated) => {
                if let Err(error) = link.check().await {
                    return Err(link.disconnected(&error));
                }
                None
            }
            // The mux reports exit status 127 as an error; for `sh -s` it is the script's
            // own "command not found".
            Err(openssh::Error::Remote(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                Some(127)
            }
            Err(error) => return Err(link.run_error(&error)),
        };
        Ok(RemoteOutput {
            status,
            stdout: self.seen,
            stderr,
        })
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        if let Some(stdin) = self.stdin.as_mut() {
            // A script that exits before reading all of its input (sudo refusing, say)
            // closes the pipe; its status and stderr tell why, so that is not our error.
            match stdin.write_all(bytes).await {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(self.io_error(&error));
                }
                Err(_) => self.stdin = None,
                Ok(()) => {
                    let _ = stdin.flush().await;
                }
            }
        }
        Ok(())
    }

    fn io_error(&self, error: &std::io::Error) -> TransportError {
        self.link.io_error(error)
    }
}
