//! One component per screen and dialog. Each owns its state, turns the
//! keys it is given into what it asks of the [`crate::app::App`], and draws
//! itself.

pub mod confirm;
pub mod form;
pub mod help;
pub mod picker;
pub mod vault;
