//! The CQL the Scylla backend runs, and a checker that every statement only names tables
//! and columns defined in `schemas/cql/weir.cql`. The checker is always compiled so the
//! statements are verified even in builds without the `scylla` feature.

use std::collections::{BTreeMap, BTreeSet};

/// The DDL file, embedded.
pub const DDL: &str = include_str!("../../../schemas/cql/weir.cql");

/// Reads one value.
pub const GET: &str = "SELECT value FROM kv WHERE bucket = ? AND key = ?";
/// Writes one value.
pub const PUT: &str = "INSERT INTO kv (bucket, key, value) VALUES (?, ?, ?)";
/// Writes one value that expires.
pub const PUT_TTL: &str = "INSERT INTO kv (bucket, key, value) VALUES (?, ?, ?) USING TTL ?";
/// Deletes one value (lightweight transaction so the caller learns whether it existed).
pub const DELETE: &str = "DELETE FROM kv WHERE bucket = ? AND key = ? IF EXISTS";
/// Lists a bucket in key order.
pub const LIST: &str = "SELECT key, value FROM kv WHERE bucket = ?";
/// CAS: create when absent.
pub const INSERT_IF_ABSENT: &str =
    "INSERT INTO kv (bucket, key, value) VALUES (?, ?, ?) IF NOT EXISTS";
/// CAS: replace when equal.
pub const UPDATE_IF_EQUAL: &str =
    "UPDATE kv SET value = ? WHERE bucket = ? AND key = ? IF value = ?";
/// CAS: delete when equal.
pub const DELETE_IF_EQUAL: &str = "DELETE FROM kv WHERE bucket = ? AND key = ? IF value = ?";

/// Every statement the backend prepares.
pub const STATEMENTS: &[&str] = &[
    GET,
    PUT,
    PUT_TTL,
    DELETE,
    LIST,
    INSERT_IF_ABSENT,
    UPDATE_IF_EQUAL,
    DELETE_IF_EQUAL,
];

/// Tables and their columns, parsed from `CREATE TABLE` statements in a DDL text.
pub fn tables(ddl: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text: String = ddl
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let lower = stmt.to_ascii_lowercase();
        let Some(pos) = lower.find("create table") else {
            continue;
        };
        let rest = &lower[pos + "create table".len()..];
        let rest = rest
            .trim_start()
            .trim_start_matches("if not exists")
            .trim_start();
        let Some(open) = rest.find('(') else { continue };
        let name = rest[..open].trim();
        let name = name.rsplit('.').next().unwrap_or(name).to_string();
        let mut cols = BTreeSet::new();
        for part in rest[open + 1..].split(',') {
            let word = part.split_whitespace().next().unwrap_or("");
            if word.is_empty() || word == "primary" || word.starts_with('(') {
                continue;
            }
            if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                cols.insert(word.to_string());
            }
        }
        out.insert(name, cols);
    }
    out
}

const KEYWORDS: &[&str] = &[
    "select", "from", "where", "and", "insert", "into", "values", "update", "set", "delete", "if",
    "not", "exists", "using", "ttl", "limit", "order", "by", "asc", "desc", "in",
];

/// Checks `stmt` against `tables`: returns the problems found (unknown table or column).
pub fn check_statement(stmt: &str, tables: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let words: Vec<String> = stmt
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let table_pos = words
        .iter()
        .position(|w| w == "from" || w == "into" || w == "update");
    let table_idx = match table_pos {
        Some(i) if words[i] == "update" => i + 1,
        Some(i) => i + 1,
        None => return vec![format!("no table in {stmt:?}")],
    };
    let Some(table) = words.get(table_idx) else {
        return vec![format!("no table in {stmt:?}")];
    };
    let table = table.rsplit('.').next().unwrap_or(table);
    let Some(cols) = tables.get(table) else {
        return vec![format!("unknown table {table} in {stmt:?}")];
    };
    words
        .iter()
        .enumerate()
        .filter(|(i, w)| *i != table_idx && !KEYWORDS.contains(&w.as_str()))
        .filter(|(_, w)| !cols.contains(w.as_str()))
        .map(|(_, w)| format!("unknown column {w} of {table} in {stmt:?}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_parses() {
        let t = tables(DDL);
        let kv = t.get("kv").expect("kv table");
        assert_eq!(
            kv.iter().map(String::as_str).collect::<Vec<_>>(),
            ["bucket", "key", "value"]
        );
    }

    #[test]
    fn every_statement_matches_the_ddl() {
        let t = tables(DDL);
        for stmt in STATEMENTS {
            let problems = check_statement(stmt, &t);
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn checker_catches_mistakes() {
        let t = tables(DDL);
        assert!(!check_statement("SELECT nope FROM kv WHERE bucket = ?", &t).is_empty());
        assert!(!check_statement("SELECT value FROM kvx WHERE bucket = ?", &t).is_empty());
        assert!(!check_statement("UPDATE kv SET valu = ? WHERE bucket = ?", &t).is_empty());
    }
}
