//! Which CSV/TSV column holds what: the header's names matched against the
//! usual aliases (`score`, `click`, `uid`, ...) or the `--*-col` flags.
//!
//! Files exported from notebooks and warehouses rarely say `prediction` and
//! `label`; the aliases cover the common spellings (case-insensitive), and a
//! flag names any other column exactly. Columns that play no part are
//! ignored, and the caller is told which, so a typo does not pass unseen.

use super::csv::CsvRecord;
use super::error::HeaderError;

/// The four columns `evald push` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Prediction,
    Label,
    UserId,
    Weight,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Prediction, Role::Label, Role::UserId, Role::Weight];

    /// The record field (and the role's name in messages).
    pub fn field(self) -> &'static str {
        match self {
            Role::Prediction => "prediction",
            Role::Label => "label",
            Role::UserId => "user_id",
            Role::Weight => "weight",
        }
    }

    /// The flag that names this role's column.
    pub fn flag(self) -> &'static str {
        match self {
            Role::Prediction => "--prediction-col",
            Role::Label => "--label-col",
            Role::UserId => "--user-col",
            Role::Weight => "--weight-col",
        }
    }

    /// Header names taken for this role without a flag (lower case; the
    /// field name first).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Role::Prediction => &[
                "prediction",
                "score",
                "pred",
                "y_score",
                "y_pred",
                "probability",
                "p",
            ],
            Role::Label => &[
                "label", "click", "clicked", "y", "y_true", "target", "is_click",
            ],
            Role::UserId => &["user_id", "uid", "user", "userid", "user_key"],
            Role::Weight => &["weight", "sample_weight", "w"],
        }
    }

    fn required(self) -> bool {
        matches!(self, Role::Prediction | Role::Label)
    }
}

/// Column names given with the `--*-col` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnFlags {
    pub prediction: Option<String>,
    pub label: Option<String>,
    pub user_id: Option<String>,
    pub weight: Option<String>,
}

impl ColumnFlags {
    pub fn get(&self, role: Role) -> Option<&str> {
        match role {
            Role::Prediction => self.prediction.as_deref(),
            Role::Label => self.label.as_deref(),
            Role::UserId => self.user_id.as_deref(),
            Role::Weight => self.weight.as_deref(),
        }
    }

    pub fn any(&self) -> bool {
        Role::ALL.iter().any(|r| self.get(*r).is_some())
    }
}

/// 0-based column positions of a header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    pub prediction: usize,
    pub label: usize,
    pub user_id: Option<usize>,
    pub weight: Option<usize>,
    /// Header names of the columns no role took.
    pub ignored: Vec<String>,
}

/// Maps `header` to the roles: a flag names its column exactly (after
/// trimming spaces); otherwise the first alias found, case-insensitively.
///
/// # Errors
/// A flag naming no column, two columns matching one role, or no
/// prediction / label column.
pub fn map_header(header: &CsvRecord, flags: &ColumnFlags) -> Result<Columns, HeaderError> {
    let names: Vec<&str> = header.fields.iter().map(|f| f.trim()).collect();
    let mut taken: Vec<Option<usize>> = Vec::with_capacity(4);
    for role in Role::ALL {
        let position = match flags.get(role) {
            Some(wanted) => Some(names.iter().position(|n| *n == wanted.trim()).ok_or_else(
                || HeaderError::NoSuchColumn {
                    flag: role.flag(),
                    name: wanted.to_owned(),
                    header: names.join(", "),
                },
            )?),
            None => by_alias(&names, role)?,
        };
        if let Some(i) = position {
            if let Some(other) = Role::ALL
                .iter()
                .zip(&taken)
                .find(|(_, t)| **t == Some(i))
                .map(|(r, _)| *r)
            {
                return Err(HeaderError::TwoRoles {
                    column: names[i].to_owned(),
                    first: other.field(),
                    second: role.field(),
                });
            }
        }
        if position.is_none() && role.required() {
            return Err(HeaderError::MissingColumn {
                role: role.field(),
                aliases: role.aliases().join(", "),
                flag: role.flag(),
            });
        }
        taken.push(position);
    }
    let ignored = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !taken.contains(&Some(*i)))
        .map(|(_, n)| (*n).to_owned())
        .collect();
    Ok(Columns {
        prediction: taken[0].unwrap_or_default(),
        label: taken[1].unwrap_or_default(),
        user_id: taken[2],
        weight: taken[3],
        ignored,
    })
}

/// The one column whose name is an alias of `role`, if any.
fn by_alias(names: &[&str], role: Role) -> Result<Option<usize>, HeaderError> {
    let matching: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| role.aliases().contains(&n.to_ascii_lowercase().as_str()))
        .map(|(i, _)| i)
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        [a, b, ..] => Err(HeaderError::Ambiguous {
            role: role.field(),
            first: names[*a].to_owned(),
            second: names[*b].to_owned(),
            flag: role.flag(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> CsvRecord {
        CsvRecord {
            line: 1,
            fields: names.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn aliases_find_the_columns_and_the_rest_are_ignored() {
        let got = map_header(
            &header(&["uid", " Score", "CLICK", "sample_weight", "ts"]),
            &ColumnFlags::default(),
        );
        assert_eq!(
            got,
            Ok(Columns {
                prediction: 1,
                label: 2,
                user_id: Some(0),
                weight: Some(3),
                ignored: vec!["ts".to_owned()],
            })
        );
    }

    #[test]
    fn flags_name_columns_exactly_and_win_over_aliases() {
        let flags = ColumnFlags {
            prediction: Some("model_b".into()),
            label: Some("converted".into()),
            ..ColumnFlags::default()
        };
        let got = map_header(&header(&["score", "model_b", "converted"]), &flags);
        assert_eq!(
            got.map(|c| (c.prediction, c.label, c.ignored)),
            Ok((1, 2, vec!["score".into()]))
        );
    }

    #[test]
    fn missing_ambiguous_and_unknown_columns_are_errors_naming_the_fix() {
        let none = ColumnFlags::default();
        for (names, flags, needle) in [
            (vec!["score", "x"], none.clone(), "--label-col"),
            (
                vec!["score", "pred", "label"],
                none.clone(),
                "'score' and 'pred'",
            ),
            (
                vec!["score", "label"],
                ColumnFlags {
                    user_id: Some("who".into()),
                    ..none.clone()
                },
                "--user-col 'who'",
            ),
            (
                vec!["score", "label"],
                ColumnFlags {
                    weight: Some("label".into()),
                    ..none.clone()
                },
                "both",
            ),
        ] {
            match map_header(&header(&names), &flags) {
                Err(e) => assert!(e.to_string().contains(needle), "{names:?}: {e}"),
                Ok(c) => panic!("{names:?} accepted: {c:?}"),
            }
        }
    }
}
