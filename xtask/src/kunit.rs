//! `cargo xtask kunit`: the kernel's KUnit tests in the guest, with KTAP results a CI can read.
#![allow(dead_code)] // used by the kunit command, next

pub mod ktap;
