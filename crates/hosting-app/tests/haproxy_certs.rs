//! Placeholder replaced by the installer's tests.
