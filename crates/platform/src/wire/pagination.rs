//! Keyset pagination for every list RPC: `page_size` (default 50, at most 500) and an opaque
//! `page_token` bound to the list's filters, so a token reused with other filters is refused
//! instead of silently skipping or repeating rows.

use sha2::{Digest, Sha256};

use crate::wire::error::AppError;

/// Default page size.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: u64 = 500;

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub size: u64,
    /// Return rows whose key sorts after this one; `None` for the first page.
    pub after: Option<String>,
}

fn scope_tag(scope: &str) -> String {
    hex::encode(&Sha256::digest(scope.as_bytes())[..6])
}

/// Validates `page_size` and `page_token` for a list whose filters are described by `scope`.
pub fn page(page_size: i32, page_token: &str, scope: &str) -> Result<Page, AppError> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => return Err(AppError::invalid("page_size", "must not be negative")),
        n => (n as u64).min(MAX_PAGE_SIZE),
    };
    if page_token.is_empty() {
        return Ok(Page { size, after: None });
    }
    let bad = || {
        AppError::invalid(
            "page_token",
            "not a token this list issued; start again with an empty token",
        )
    };
    let decoded = hex::decode(page_token).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (tag, key) = text.split_once('\n').ok_or_else(bad)?;
    if tag != scope_tag(scope) {
        return Err(AppError::invalid(
            "page_token",
            "the filters changed since this token was issued",
        ));
    }
    Ok(Page {
        size,
        after: Some(key.to_owned()),
    })
}

/// Splits rows fetched with `limit(page.size + 1)` into the page and the next page's token
/// (empty on the last page).
pub fn split<T>(mut rows: Vec<T>, page: &Page, scope: &str, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
    if rows.len() as u64 <= page.size {
        return (rows, String::new());
    }
    rows.truncate(page.size as usize);
    let token = rows
        .last()
        .map(|last| hex::encode(format!("{}\n{}", scope_tag(scope), key(last))))
        .unwrap_or_default();
    (rows, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_continue_after_the_last_row_and_are_bound_to_the_filters() {
        let first = page(2, "", "subjects|site=A").unwrap_or_else(|e| panic!("{e}"));
        let (rows, token) = split(vec![1, 2, 3], &first, "subjects|site=A", |n| n.to_string());
        assert_eq!(rows, [1, 2]);
        let next = page(2, &token, "subjects|site=A").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.after.as_deref(), Some("2"));
        assert!(page(2, &token, "subjects|site=B").is_err());
        assert!(page(2, "zz", "subjects|site=A").is_err());
        let (rows, token) = split(vec![3], &next, "subjects|site=A", |n| n.to_string());
        assert_eq!((rows, token.as_str()), (vec![3], ""));
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page(0, "", "s").map(|p| p.size).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page(10_000, "", "s").map(|p| p.size).ok(), Some(MAX_PAGE_SIZE));
        assert!(page(-1, "", "s").is_err());
    }
}
