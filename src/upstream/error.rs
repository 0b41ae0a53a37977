//! Upstream failures, typed by the decision they force: retry later (transient) or give up
//! now (permanent). A 404 and an unreadable body are permanent at once; timeouts, connection
//! errors, 5xx and 429 are transient.

use super::budget::BudgetUnavailable;
use crate::domain::Service;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{service} has no such resource (404)")]
    NotFound { service: Service },
    #[error("{service} answered HTTP {status}")]
    Status { service: Service, status: u16 },
    #[error("{service} kept answering 429 (rate limit exceeded) after {tries} tries")]
    RateLimited { service: Service, tries: u32 },
    #[error("could not reach {service}: {reason}")]
    Transport { service: Service, reason: String },
    #[error("{service} sent a body larger than {limit} bytes")]
    TooLarge { service: Service, limit: usize },
    #[error("{service} sent an unreadable body: {reason}")]
    Unreadable { service: Service, reason: String },
    #[error(transparent)]
    Limiter(#[from] BudgetUnavailable),
}

/// What the job runner does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again after a backoff.
    Retry,
    /// Record the failure now; retrying cannot help.
    GiveUp { not_found: bool },
}

impl UpstreamError {
    pub fn disposition(&self) -> Disposition {
        match self {
            UpstreamError::NotFound { .. } => Disposition::GiveUp { not_found: true },
            UpstreamError::Unreadable { .. } | UpstreamError::TooLarge { .. } => {
                Disposition::GiveUp { not_found: false }
            }
            // 4xx other than 404/429 means our request is wrong; retrying repeats it.
            UpstreamError::Status { status, .. } if (400..500).contains(status) => {
                Disposition::GiveUp { not_found: false }
            }
            UpstreamError::Status { .. }
            | UpstreamError::RateLimited { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Limiter(_) => Disposition::Retry,
        }
    }
}
