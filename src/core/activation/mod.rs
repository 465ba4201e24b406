//! activation (work in progress).
