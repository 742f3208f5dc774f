//! Load generators and benchmark scenarios.
