//! The `evald` command line as a new user meets it: the real binary against
//! a real server, one test per friction point issue #16 lists.

mod commands;
mod push;
