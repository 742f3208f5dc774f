//! Accounts, passwords, tokens and roles.
