//! Pages of a stream's users in a chosen order, with opaque keyset cursors.
//!
//! A store hands every user to a [`UserPager`] (in any order); the pager
//! keeps only the best `limit + 1` after the cursor, so a page costs one pass
//! over the users and memory for one page, and any store pages the same way.
//! A cursor names the last user of the previous page by its sort key, so a
//! page never repeats or skips a user that did not change in between (users
//! whose AUC or count changes may move across pages, as with any keyset
//! cursor).

use std::cmp::Ordering;

use super::aggregate::ScoreAggregate;

/// The order of a page of users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// By user id, bytewise ascending.
    #[default]
    UserId,
    /// By AUC ascending (worst first); users without an AUC last; ties by id.
    Auc,
    /// By record count descending; ties by id.
    Impressions,
}

impl UserOrder {
    /// Every order, as the query names them.
    pub const ALL: [UserOrder; 3] = [UserOrder::UserId, UserOrder::Auc, UserOrder::Impressions];

    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            UserOrder::UserId => "user_id",
            UserOrder::Auc => "auc",
            UserOrder::Impressions => "impressions",
        }
    }

    /// The order called `name`.
    pub fn parse(name: &str) -> Option<UserOrder> {
        UserOrder::ALL.into_iter().find(|o| o.name() == name)
    }

    fn tag(self) -> char {
        match self {
            UserOrder::UserId => 'u',
            UserOrder::Auc => 'a',
            UserOrder::Impressions => 'i',
        }
    }

    /// Compares two users in this order (a total order: ties go by id).
    fn cmp(self, a: &UserEntry, b: &UserEntry) -> Ordering {
        self.cmp_keys(a.key(), b.key())
    }

    fn cmp_keys(self, a: Key<'_>, b: Key<'_>) -> Ordering {
        let first = match self {
            UserOrder::UserId => Ordering::Equal,
            UserOrder::Auc => match (a.auc, b.auc) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
            UserOrder::Impressions => b.count.cmp(&a.count),
        };
        first.then_with(|| a.user_id.as_bytes().cmp(b.user_id.as_bytes()))
    }
}

/// What a user is sorted by, borrowed.
#[derive(Debug, Clone, Copy)]
struct Key<'a> {
    auc: Option<f64>,
    count: u64,
    user_id: &'a str,
}

/// One user of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEntry {
    pub user_id: String,
    /// Records of the user.
    pub count: u64,
    /// Positive records of the user.
    pub positives: u64,
    /// The user's AUC; `None` with one class.
    pub auc: Option<f64>,
}

impl UserEntry {
    fn key(&self) -> Key<'_> {
        Key {
            auc: self.auc,
            count: self.count,
            user_id: &self.user_id,
        }
    }

    /// The entry of a user with aggregate `agg`.
    pub fn of(user_id: &str, agg: &ScoreAggregate) -> UserEntry {
        let counts = agg.counts();
        UserEntry {
            user_id: user_id.to_owned(),
            count: counts.count,
            positives: counts.positives,
            auc: agg.auc(),
        }
    }
}

/// One page of users, and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct UsersPage {
    pub users: Vec<UserEntry>,
    pub next_cursor: Option<String>,
}

/// A cursor that is not one this service issued for this order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is not a cursor this service issued (use next_cursor from the previous page unchanged)")]
    Malformed,
    #[error(
        "cursor was issued for order={issued}, not order={asked}; keep the order while paging"
    )]
    OtherOrder {
        issued: &'static str,
        asked: &'static str,
    },
}

/// Selects one page of users (see the module docs).
#[derive(Debug, Clone)]
pub struct UserPager {
    order: UserOrder,
    limit: usize,
    after: Option<UserEntry>,
    /// Candidates; trimmed to the best `limit + 1` whenever it doubles.
    kept: Vec<UserEntry>,
    /// The worst kept candidate once `limit + 1` are kept: anything not
    /// better cannot make the page.
    worst: Option<UserEntry>,
}

impl UserPager {
    /// A pager for `limit` (at least 1) users in `order` after `cursor`.
    ///
    /// # Errors
    /// A cursor this service did not issue, or issued for another order.
    pub fn new(order: UserOrder, limit: usize, cursor: Option<&str>) -> Result<Self, CursorError> {
        let after = cursor.map(|c| decode(order, c)).transpose()?;
        Ok(UserPager {
            order,
            limit: limit.max(1),
            after,
            kept: Vec::new(),
            worst: None,
        })
    }

    /// Offers one user. The AUC is computed only when the order needs it or
    /// the user makes the page so far.
    pub fn offer(&mut self, user_id: &str, agg: &ScoreAggregate) {
        let counts = agg.counts();
        let mut probe = UserEntry {
            user_id: String::new(),
            count: counts.count,
            positives: counts.positives,
            auc: None,
        };
        if self.order == UserOrder::Auc {
            probe.auc = agg.auc();
        }
        if !self.wants(&probe, user_id) {
            return;
        }
        probe.user_id = user_id.to_owned();
        if self.order != UserOrder::Auc {
            probe.auc = agg.auc();
        }
        self.keep(probe);
    }

    /// Offers one user whose entry the store already has.
    pub fn offer_entry(&mut self, entry: UserEntry) {
        if self.wants(&entry, &entry.user_id) {
            self.keep(entry);
        }
    }

    /// True when a user with `probe`'s key and id `user_id` comes after the
    /// cursor and before the worst kept candidate.
    fn wants(&self, probe: &UserEntry, user_id: &str) -> bool {
        let key = Key {
            user_id,
            ..probe.key()
        };
        let cmp_to = |other: &UserEntry| self.order.cmp_keys(key, other.key());
        let after_cursor = self
            .after
            .as_ref()
            .is_none_or(|a| cmp_to(a) == Ordering::Greater);
        let before_worst = self
            .worst
            .as_ref()
            .is_none_or(|w| cmp_to(w) == Ordering::Less);
        after_cursor && before_worst
    }

    fn keep(&mut self, entry: UserEntry) {
        self.kept.push(entry);
        if self.kept.len() >= 2 * (self.limit + 1) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let order = self.order;
        self.kept.sort_by(|a, b| order.cmp(a, b));
        self.kept.truncate(self.limit + 1);
        if self.kept.len() == self.limit + 1 {
            self.worst = self.kept.last().cloned();
        }
    }

    /// The page: the best `limit` users after the cursor, and the cursor of
    /// the next page when there are more.
    pub fn finish(mut self) -> UsersPage {
        self.trim();
        let more = self.kept.len() > self.limit;
        self.kept.truncate(self.limit);
        let next_cursor = more
            .then(|| self.kept.last().map(|last| encode(self.order, last)))
            .flatten();
        UsersPage {
            users: self.kept,
            next_cursor,
        }
    }
}

/// `<tag>.<auc bits or ->.<count>.<user id>`, hex-encoded so it is opaque
/// and URL-safe.
fn encode(order: UserOrder, last: &UserEntry) -> String {
    let auc = last
        .auc
        .map_or_else(|| "-".to_owned(), |a| format!("{:x}", a.to_bits()));
    let plain = format!("{}.{auc}.{}.{}", order.tag(), last.count, last.user_id);
    plain.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(order: UserOrder, cursor: &str) -> Result<UserEntry, CursorError> {
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(CursorError::Malformed)?;
    let plain = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
    let mut parts = plain.splitn(4, '.');
    let (Some(tag), Some(auc), Some(count), Some(user_id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CursorError::Malformed);
    };
    let issued = UserOrder::ALL
        .into_iter()
        .find(|o| tag.len() == 1 && tag.starts_with(o.tag()))
        .ok_or(CursorError::Malformed)?;
    if issued != order {
        return Err(CursorError::OtherOrder {
            issued: issued.name(),
            asked: order.name(),
        });
    }
    let auc = match auc {
        "-" => None,
        bits => Some(f64::from_bits(
            u64::from_str_radix(bits, 16).map_err(|_| CursorError::Malformed)?,
        )),
    };
    Ok(UserEntry {
        user_id: user_id.to_owned(),
        count: count.parse().map_err(|_| CursorError::Malformed)?,
        positives: 0,
        auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Record;

    fn agg(records: &[(f64, bool)]) -> ScoreAggregate {
        let mut rs: Vec<Record> = records
            .iter()
            .map(|&(score, positive)| Record {
                score,
                positive,
                weight: 1.0,
            })
            .collect();
        ScoreAggregate::from_records(&mut rs)
    }

    fn users() -> Vec<(String, ScoreAggregate)> {
        (0..23)
            .map(|i| {
                let n = i % 5 + 1;
                let records: Vec<(f64, bool)> = (0..n)
                    .map(|j| (f64::from((i * 7 + j * 3) % 11) / 11.0, (i + j) % 3 == 0))
                    .collect();
                (format!("u{i:02}"), agg(&records))
            })
            .collect()
    }

    fn all_pages(order: UserOrder, limit: usize) -> Vec<UserEntry> {
        let users = users();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pager =
                UserPager::new(order, limit, cursor.as_deref()).unwrap_or_else(|e| panic!("{e}"));
            // Offer in reverse to show the input order does not matter.
            for (id, a) in users.iter().rev() {
                pager.offer(id, a);
            }
            let page = pager.finish();
            assert!(page.users.len() <= limit);
            out.extend(page.users);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    #[test]
    fn paging_visits_every_user_once_in_order() {
        for order in UserOrder::ALL {
            for limit in [1, 4, 23, 100] {
                let paged = all_pages(order, limit);
                let mut want: Vec<UserEntry> =
                    users().iter().map(|(id, a)| UserEntry::of(id, a)).collect();
                want.sort_by(|a, b| order.cmp(a, b));
                assert_eq!(paged, want, "order {} limit {limit}", order.name());
            }
        }
    }

    #[test]
    fn cursors_of_another_order_or_made_up_are_refused() {
        let mut pager = UserPager::new(UserOrder::Auc, 2, None).unwrap_or_else(|e| panic!("{e}"));
        for (id, a) in users() {
            pager.offer(&id, &a);
        }
        let cursor = pager.finish().next_cursor.unwrap_or_default();
        assert!(UserPager::new(UserOrder::Auc, 2, Some(&cursor)).is_ok());
        assert_eq!(
            UserPager::new(UserOrder::UserId, 2, Some(&cursor)).err(),
            Some(CursorError::OtherOrder {
                issued: "auc",
                asked: "user_id"
            })
        );
        for bad in ["", "zz", "abc", "752e2d2e78"] {
            assert_eq!(
                UserPager::new(UserOrder::UserId, 2, Some(bad)).err(),
                Some(CursorError::Malformed),
                "{bad}"
            );
        }
    }
}
