//! Tenants: the namespace convention for stored stream names and the
//! per-tenant budgets (streams and state bytes).
//!
//! With API keys configured, the HTTP layer stores tenant `t`'s stream `s` as
//! `t/s`. A client's stream name cannot contain [`SEPARATOR`], so the stored
//! name is unambiguous and one tenant can never name another's stream. Names
//! without a separator (no API keys configured) belong to no tenant, and no
//! per-tenant budget applies to them.

use std::collections::HashMap;
use std::sync::Mutex;

use super::store::StoreError;

/// Separates the tenant from the client's name in a stored stream name.
pub const SEPARATOR: char = '/';

/// The stored name of stream `name` of `tenant` (`name` itself without one).
pub fn qualify(tenant: Option<&str>, name: &str) -> String {
    match tenant {
        Some(t) => format!("{t}{SEPARATOR}{name}"),
        None => name.to_owned(),
    }
}

/// The tenant a stored name belongs to, if any.
pub fn tenant_of(stored: &str) -> Option<&str> {
    stored.split_once(SEPARATOR).map(|(tenant, _)| tenant)
}

/// The name the tenant knows a stored stream by (the stored name without its
/// tenant prefix), as every answer and error message shows it.
pub fn local_name(stored: &str) -> &str {
    stored
        .split_once(SEPARATOR)
        .map_or(stored, |(_, name)| name)
}

/// Configured per-tenant budgets; `None` leaves only the global budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimits {
    pub max_streams: Option<usize>,
    pub memory_budget: Option<usize>,
}

/// Per-tenant accounting of state bytes, kept only when a per-tenant memory
/// budget is configured (so the open, single-tenant service pays nothing).
#[derive(Debug, Default)]
pub struct TenantLedger {
    limits: TenantLimits,
    /// Bytes held (or reserved) by each tenant's streams. A mutex, not a map
    /// of atomics: it is held for one addition per ingest, never across I/O.
    bytes: Mutex<HashMap<String, usize>>,
}

impl TenantLedger {
    /// An empty ledger enforcing `limits`.
    pub fn new(limits: TenantLimits) -> Self {
        TenantLedger {
            limits,
            bytes: Mutex::default(),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> TenantLimits {
        self.limits
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses a new stream `name` when its tenant already holds
    /// `--tenant-max-streams` of the `existing` stored names.
    pub fn check_new_stream<'a>(
        &self,
        name: &str,
        existing: impl Iterator<Item = &'a String>,
    ) -> Result<(), StoreError> {
        let (Some(tenant), Some(limit)) = (tenant_of(name), self.limits.max_streams) else {
            return Ok(());
        };
        let held = existing.filter(|n| tenant_of(n) == Some(tenant)).count();
        if held >= limit {
            return Err(StoreError::TenantTooManyStreams {
                tenant: tenant.to_owned(),
                limit,
            });
        }
        Ok(())
    }

    /// Reserves `needed` bytes for stream `name` within its tenant's budget.
    pub fn reserve(&self, name: &str, needed: usize) -> Result<(), StoreError> {
        let (Some(tenant), Some(limit)) = (tenant_of(name), self.limits.memory_budget) else {
            return Ok(());
        };
        let mut bytes = self.bytes();
        let used = bytes.get(tenant).copied().unwrap_or(0);
        if used.saturating_add(needed) > limit {
            return Err(StoreError::TenantOverMemory {
                tenant: tenant.to_owned(),
                used,
                needed,
                limit,
            });
        }
        bytes.insert(tenant.to_owned(), used + needed);
        Ok(())
    }

    /// Changes the bytes held by stream `name`'s tenant by `delta`.
    pub fn adjust(&self, name: &str, delta: isize) {
        let Some(tenant) = tenant_of(name).filter(|_| self.limits.memory_budget.is_some()) else {
            return;
        };
        let mut bytes = self.bytes();
        let used = bytes.entry(tenant.to_owned()).or_insert(0);
        *used = used.saturating_add_signed(delta);
    }

    /// Replaces the accounting with the `(stored name, bytes)` of every stream
    /// (after a restore).
    pub fn reset<'a>(&self, streams: impl Iterator<Item = (&'a str, usize)>) {
        let mut bytes = self.bytes();
        bytes.clear();
        if self.limits.memory_budget.is_none() {
            return;
        }
        for (name, held) in streams {
            if let Some(tenant) = tenant_of(name) {
                *bytes.entry(tenant.to_owned()).or_insert(0) += held;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_and_read_back() {
        assert_eq!(qualify(Some("acme"), "ctr"), "acme/ctr");
        assert_eq!(qualify(None, "ctr"), "ctr");
        assert_eq!(tenant_of("acme/ctr"), Some("acme"));
        assert_eq!(tenant_of("ctr"), None);
        assert_eq!(local_name("acme/ctr"), "ctr");
        assert_eq!(local_name("ctr"), "ctr");
    }

    #[test]
    fn a_tenant_over_its_stream_limit_is_refused_others_are_not() {
        let ledger = TenantLedger::new(TenantLimits {
            max_streams: Some(1),
            memory_budget: None,
        });
        let held = ["a/x".to_owned(), "b-other/x".to_owned(), "x".to_owned()];
        assert!(matches!(
            ledger.check_new_stream("a/y", held.iter()),
            Err(StoreError::TenantTooManyStreams { limit: 1, .. })
        ));
        assert!(ledger.check_new_stream("b/y", held.iter()).is_ok());
        assert!(ledger.check_new_stream("y", held.iter()).is_ok());
    }

    #[test]
    fn memory_is_reserved_released_and_reset_per_tenant() {
        let ledger = TenantLedger::new(TenantLimits {
            max_streams: None,
            memory_budget: Some(100),
        });
        assert!(ledger.reserve("a/x", 60).is_ok());
        assert!(matches!(
            ledger.reserve("a/y", 41),
            Err(StoreError::TenantOverMemory { used: 60, .. })
        ));
        assert!(ledger.reserve("b/x", 100).is_ok());
        assert!(ledger.reserve("untenanted", 1_000).is_ok());
        ledger.adjust("a/x", -60);
        assert!(ledger.reserve("a/y", 100).is_ok());
        ledger.reset([("a/x", 10), ("a/y", 20), ("b/x", 100)].into_iter());
        assert!(ledger.reserve("a/z", 70).is_ok());
        assert!(ledger.reserve("b/y", 1).is_err());
    }
}
