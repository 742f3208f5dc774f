//! The GraphQL API.
