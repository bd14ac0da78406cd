//! One component per screen and dialog. Each owns its state (the help has
//! none; the vault view is given the open vault and its selection, which
//! the app keeps), turns the keys it is given into what it asks of the
//! [`crate::app::App`], and draws itself.

pub mod confirm;
pub mod form;
pub mod help;
pub mod picker;
pub mod vault;
