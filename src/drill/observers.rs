//! What watches a drill while something is broken: the client probe and the load balancers'
//! watch, stopped together.

use crate::{
    drill::DrillError,
    drill::probe::{Recorded, Running, TAIL},
    drill::watch::{Sample, Watch},
};

pub struct Observers<T> {
    pub watch: Watch<T>,
    pub probe: Running,
}

impl<T: Clone + Send + 'static> Observers<T> {
    /// Stops both after a failure, and hands the failure back.
    pub async fn abandon(self, error: DrillError) -> DrillError {
        let _ = self.watch.stop().await;
        let _ = self.probe.stop().await;
        error
    }

    /// Lets both run on for a short tail, then stops them: every sample, every attempt.
    pub async fn finish(self) -> Result<(Vec<Vec<Sample<T>>>, Recorded), DrillError> {
        tokio::time::sleep(TAIL).await;
        let samples = self.watch.stop().await;
        let recorded = self.probe.stop().await?;
        Ok((samples, recorded))
    }
}
