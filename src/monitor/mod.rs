//! Security monitoring. So far: content and URL screening ([`screen`]). Activity ingestion,
//! the behaviour detectors and incidents build on it.

pub mod screen;
