//! Explicit schedules: a list of operations and faults, decoded from
//! arbitrary bytes (the `schedule` fuzz target), executed against the same
//! checker as a seed ([`crate::run::run_schedule`]). Where a seed's workload
//! comes from its RNG, a schedule says which operation comes next and when
//! a fault starts or stops, so a fuzzer can steer it and `cargo fuzz tmin`
//! can shrink a failing one to the few steps that matter.
//!
//! The steps are the simulator's one operation vocabulary, [`Op`]: every
//! operation and fault of the single-handle world can be scheduled. The
//! seed still decides the log's configuration and the details of each
//! step (value sizes, which offset a read or truncation picks).

use arbitrary::{Arbitrary, Unstructured};

pub use crate::op::{FaultStep, Op};

/// Most steps a schedule may have (longer inputs are cut).
pub const MAX_STEPS: usize = 400;

/// A schedule: the seed (configuration and details) and the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Seeds the log's configuration and each step's details.
    pub seed: u64,
    /// What happens, in order.
    pub steps: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Schedule {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let seed = u64::from(u.arbitrary::<u16>()?);
        let mut steps = Vec::new();
        while steps.len() < MAX_STEPS && !u.is_empty() {
            steps.push(u.arbitrary()?);
        }
        Ok(Schedule { seed, steps })
    }
}

impl Schedule {
    /// Decodes fuzzer bytes (never fails: missing bytes end the schedule).
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        Schedule::arbitrary(&mut u).unwrap_or(Schedule { seed: 0, steps: Vec::new() })
    }
}
