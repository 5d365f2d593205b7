//! Backoff recipes.
