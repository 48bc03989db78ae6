//! What the domains' commands share: signing in and opening the database, reading values
//! that must not sit in the process list, and printing (JSON, progress bars).

mod input;
mod output;
mod signin;

pub(crate) use input::*;
pub(crate) use output::*;
pub(crate) use signin::*;
