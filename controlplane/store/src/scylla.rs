//! The Scylla backend (cargo feature `scylla`): history at scale (stream sessions, the
//! recordings index, tokens…) in one `kv` table partitioned by bucket. Statements live in
//! [`crate::cql`] and are checked against `schemas/cql/weir.cql` by unit tests.

use std::time::Duration;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::cql;
use crate::error::{Result, StoreError};
use crate::kv::{Kv, check_path};

const NAME: &str = "scylla";

fn be(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(NAME, e)
}

struct Prepared {
    get: PreparedStatement,
    put: PreparedStatement,
    put_ttl: PreparedStatement,
    delete: PreparedStatement,
    list: PreparedStatement,
    insert_if_absent: PreparedStatement,
    update_if_equal: PreparedStatement,
    delete_if_equal: PreparedStatement,
}

/// A Scylla session with prepared statements.
pub struct ScyllaKv {
    session: Session,
    stmts: Prepared,
}

impl std::fmt::Debug for ScyllaKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScyllaKv")
    }
}

/// The DDL with the keyspace name and replication factor substituted.
pub fn schema_statements(keyspace: &str, replication_factor: u32) -> Vec<String> {
    let text: String = cql::DDL
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("EXISTS weir", &format!("EXISTS {keyspace}"))
                .replace("weir.", &format!("{keyspace}."))
                .replace(
                    "'replication_factor': 3",
                    &format!("'replication_factor': {replication_factor}"),
                )
        })
        .collect()
}

fn applied(result: scylla::response::query_result::QueryResult) -> Result<bool> {
    let rows = result.into_rows_result().map_err(be)?;
    let mut it = rows.rows::<Row>().map_err(be)?;
    match it.next() {
        Some(row) => {
            let row = row.map_err(be)?;
            Ok(matches!(
                row.columns.first(),
                Some(Some(CqlValue::Boolean(true)))
            ))
        }
        None => Ok(false),
    }
}

impl ScyllaKv {
    /// Connects to `nodes` (`host:port`), creates the keyspace and tables if missing
    /// (from `schemas/cql/weir.cql`) and prepares the statements.
    pub async fn connect(
        nodes: &[String],
        keyspace: &str,
        replication_factor: u32,
    ) -> Result<Self> {
        if !keyspace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Invalid("bad keyspace name".into()));
        }
        let session = SessionBuilder::new()
            .known_nodes(nodes)
            .build()
            .await
            .map_err(be)?;
        for stmt in schema_statements(keyspace, replication_factor) {
            session.query_unpaged(stmt, &[]).await.map_err(be)?;
        }
        session.use_keyspace(keyspace, false).await.map_err(be)?;
        let p = |s: &'static str| session.prepare(s);
        let stmts = Prepared {
            get: p(cql::GET).await.map_err(be)?,
            put: p(cql::PUT).await.map_err(be)?,
            put_ttl: p(cql::PUT_TTL).await.map_err(be)?,
            delete: p(cql::DELETE).await.map_err(be)?,
            list: p(cql::LIST).await.map_err(be)?,
            insert_if_absent: p(cql::INSERT_IF_ABSENT).await.map_err(be)?,
            update_if_equal: p(cql::UPDATE_IF_EQUAL).await.map_err(be)?,
            delete_if_equal: p(cql::DELETE_IF_EQUAL).await.map_err(be)?,
        };
        tracing::info!(?nodes, keyspace, "scylla store connected");
        Ok(Self { session, stmts })
    }
}

#[async_trait]
impl Kv for ScyllaKv {
    fn backend(&self) -> &'static str {
        NAME
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        check_path(bucket, key)?;
        let res = self
            .session
            .execute_unpaged(&self.stmts.get, (bucket, key))
            .await
            .map_err(be)?;
        let rows = res.into_rows_result().map_err(be)?;
        let row = rows.maybe_first_row::<(Vec<u8>,)>().map_err(be)?;
        Ok(row.map(|r| r.0))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_path(bucket, key)?;
        match ttl {
            Some(t) => {
                let secs = t.as_secs().clamp(1, i32::MAX as u64) as i32;
                self.session
                    .execute_unpaged(&self.stmts.put_ttl, (bucket, key, value, secs))
                    .await
                    .map_err(be)?;
            }
            None => {
                self.session
                    .execute_unpaged(&self.stmts.put, (bucket, key, value))
                    .await
                    .map_err(be)?;
            }
        }
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<bool> {
        check_path(bucket, key)?;
        let res = self
            .session
            .execute_unpaged(&self.stmts.delete, (bucket, key))
            .await
            .map_err(be)?;
        applied(res)
    }

    async fn list(&self, bucket: &str) -> Result<Vec<(String, Vec<u8>)>> {
        check_path(bucket, "x")?;
        let res = self
            .session
            .execute_unpaged(&self.stmts.list, (bucket,))
            .await
            .map_err(be)?;
        let rows = res.into_rows_result().map_err(be)?;
        let mut out = Vec::new();
        for row in rows.rows::<(String, Vec<u8>)>().map_err(be)? {
            out.push(row.map_err(be)?);
        }
        Ok(out)
    }

    async fn cas(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool> {
        check_path(bucket, key)?;
        let res = match (expected, new) {
            (None, Some(v)) => {
                self.session
                    .execute_unpaged(&self.stmts.insert_if_absent, (bucket, key, v))
                    .await
            }
            (Some(old), Some(v)) => {
                self.session
                    .execute_unpaged(&self.stmts.update_if_equal, (v, bucket, key, old))
                    .await
            }
            (Some(old), None) => {
                self.session
                    .execute_unpaged(&self.stmts.delete_if_equal, (bucket, key, old))
                    .await
            }
            (None, None) => return Ok(self.get(bucket, key).await?.is_none()),
        };
        applied(res.map_err(be)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_substitution() {
        let s = schema_statements("ks1", 1);
        assert!(s[0].contains("EXISTS ks1") && s[0].contains("'replication_factor': 1"));
        assert!(s[1].contains("ks1.kv"));
    }
}
