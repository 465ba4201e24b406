//! norm (work in progress).
