//! Hookhub's end-to-end tests, as one test binary.
//!
//! Each file under `tests/` used to be a test binary of its own, and every
//! one of them linked the whole workspace (actix-web, sea-orm, lapin, the
//! JavaScript sandbox...): some twenty links of a large debug binary on
//! every build, which was most of what a change to any crate cost before
//! its tests could run. Here each former file is a module, and the
//! workspace is linked once (the layout zero2prod and Svix use).
//!
//! One binary means one process: tests of different modules now run side
//! by side on the test harness's threads. What a hub keeps per process is
//! shared with them: the metrics registry (whose store gauges are read at
//! most once per `STORE_GAUGES_EVERY`, whoever scrapes), the transform
//! sandbox, and the environment. So no test here sets environment
//! variables or the current directory, or installs a global subscriber;
//! a test that reads a store gauge waits until its own store was read.
//!
//! Run one module with `cargo test --test it <module>::`, e.g.
//! `cargo test --test it portal::`.

#[macro_use]
mod common;

mod access;
mod api;
mod backlog;
mod bad_input;
mod broker;
mod crash;
mod defaults;
mod delivery;
mod exposure;
mod fairness;
mod fuzz;
mod integrations;
mod openapi;
mod operations;
mod ordering;
mod platform;
mod poison;
mod portal;
mod reliability;
mod transforms;
