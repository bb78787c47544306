//! The checkers of the single-handle world, one file per concern. Each
//! file's header says what it verifies and what it does not.
//!
//! - `durability`: nothing acknowledged durable is lost; failed writes
//!   leave what their error allows; recovery is idempotent.
//! - `content`: records read back are the model's, byte for byte, dense
//!   and in order.
//! - `read_api`: each read API (`read`, `iter`, `reader`,
//!   `offset_for_timestamp`) against the model.
//! - `fs_effects`: a refused second writer changes nothing; lost derived
//!   files lose nothing; media faults are detected, never returned.
//! - `retention`: retention deletes whole segments, only those over the
//!   byte budget or past the age limit, and runs to completion.
//! - `liveness`: progress once faults stop.
//! - `salvage`: the operator's salvage of a log whose open reported
//!   durable corruption returns only records written at their offsets, and
//!   the salvaged log holds exactly them.
//!
//! `aimed` is not a checker but a fault: media faults aimed at the
//! structure of a segment (header, frame lengths, markers).

mod aimed;
mod content;
pub(crate) use content::View;
mod durability;
pub(crate) mod fs_effects;
mod liveness;
mod read_api;
mod retention;
mod salvage;
