//! Stream state (work in progress).
