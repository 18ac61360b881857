//! Integration tests of `hosting_archive::read_tar_gz`: archives are built in memory
//! (raw headers where `tar::Builder` refuses to write the bad input) and gzipped with
//! flate2; one test binary, modules by theme.

#[path = "archive/support.rs"]
mod support;

#[path = "archive/gnu_tar.rs"]
mod gnu_tar;
#[path = "archive/gzip.rs"]
mod gzip;
#[path = "archive/happy.rs"]
mod happy;
#[path = "archive/limits.rs"]
mod limits;
#[path = "archive/rules.rs"]
mod rules;
