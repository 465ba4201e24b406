//! optim (work in progress).
