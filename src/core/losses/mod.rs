//! losses (work in progress).
