//! What lbctl's exit status means, as scripts and CI read it (terraform's
//! `-detailed-exitcode` convention for `plan`).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success; for `plan`, nothing to change.
    Success = 0,
    /// An error or invalid input: nothing was changed (or a host failed and rolled back).
    Failed = 1,
    /// `plan --detailed-exitcode` found changes.
    Changes = 2,
    /// `failover-test` ran, but the tier missed its budget; or `drain --wait` ran out of time
    /// with sessions left.
    MissedBudget = 3,
}

impl ExitStatus {
    /// Every status, in order.
    pub const ALL: [ExitStatus; 4] = [
        ExitStatus::Success,
        ExitStatus::Failed,
        ExitStatus::Changes,
        ExitStatus::MissedBudget,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// What it means, as the README's table and the manual page say.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success; for plan, nothing to change",
            ExitStatus::Failed => "error or invalid input (nothing was changed)",
            ExitStatus::Changes => "plan --detailed-exitcode found changes",
            ExitStatus::MissedBudget => {
                "failover-test ran but the tier missed its budget; drain --wait timed out with sessions left"
            }
        }
    }

    /// `Failed` when `failed`, else `Success`.
    pub fn failed_if(failed: bool) -> ExitStatus {
        if failed {
            ExitStatus::Failed
        } else {
            ExitStatus::Success
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}
