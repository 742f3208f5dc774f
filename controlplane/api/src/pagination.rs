//! Relay-style connections over lists already in memory.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};

use crate::error::{ApiError, ApiResult};

/// Largest page.
pub const MAX_PAGE: i32 = 100;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: i32 = 20;

/// Relay arguments.
#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    /// Cursor to start after.
    pub after: Option<String>,
    /// Cursor to end before.
    pub before: Option<String>,
    /// First n.
    pub first: Option<i32>,
    /// Last n.
    pub last: Option<i32>,
}

/// Pages `items` (already in order); `cursor` gives each item's cursor (its id).
pub fn paginate<T: OutputType>(
    items: Vec<T>,
    cursor: impl Fn(&T) -> String,
    args: PageArgs,
) -> ApiResult<Connection<String, T>> {
    for n in [args.first, args.last].into_iter().flatten() {
        if !(0..=MAX_PAGE).contains(&n) {
            return Err(ApiError::bad_input(format!("page size must be 0 to {MAX_PAGE}")).into());
        }
    }
    let cursors: Vec<String> = items.iter().map(&cursor).collect();
    let find = |c: &str| {
        cursors
            .iter()
            .position(|x| x == c)
            .ok_or_else(|| ApiError::bad_input("unknown cursor"))
    };
    let mut start = 0;
    let mut end = items.len();
    if let Some(a) = &args.after {
        start = find(a)? + 1;
    }
    if let Some(b) = &args.before {
        end = find(b)?;
    }
    if end < start {
        end = start;
    }
    let first = match (args.first, args.last) {
        (None, None) => Some(DEFAULT_PAGE),
        (f, _) => f,
    };
    if let Some(f) = first {
        end = end.min(start + f as usize);
    }
    if let Some(l) = args.last {
        start = start.max(end.saturating_sub(l as usize));
    }
    let mut conn = Connection::new(start > 0, end < items.len());
    conn.edges.extend(
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i >= start && *i < end)
            .map(|(i, t)| Edge::new(cursors[i].clone(), t)),
    );
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Connection<String, String>) -> Vec<String> {
        c.edges.iter().map(|e| e.node.clone()).collect()
    }

    #[test]
    fn pages() {
        let items: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let args = |after: Option<&str>, first: Option<i32>, last: Option<i32>| PageArgs {
            after: after.map(str::to_string),
            before: None,
            first,
            last,
        };
        let c = paginate(items.clone(), String::clone, args(None, Some(2), None)).expect("page");
        assert_eq!(ids(&c), ["0", "1"]);
        assert!(c.has_next_page && !c.has_previous_page);
        let c =
            paginate(items.clone(), String::clone, args(Some("1"), Some(2), None)).expect("page");
        assert_eq!(ids(&c), ["2", "3"]);
        let c = paginate(items.clone(), String::clone, args(None, None, Some(2))).expect("page");
        assert_eq!(ids(&c), ["3", "4"]);
        assert!(c.has_previous_page && !c.has_next_page);
        let c = paginate(items.clone(), String::clone, args(Some("3"), None, None)).expect("page");
        assert_eq!(ids(&c), ["4"]);
        assert!(paginate(items.clone(), String::clone, args(Some("x"), None, None)).is_err());
        assert!(paginate(items, String::clone, args(None, Some(1000), None)).is_err());
    }
}
