//! A linearizability checker for the cluster's key-value history: the
//! Wing–Gong search with Lowe's memoization (as in Porcupine and Knossos'
//! "wgl"), over each key's history on its own (P-compositionality: an
//! operation touches one key, so the history is linearizable exactly when
//! every key's is).
//!
//! The model is a register per key (`None`: absent). Every operation
//! returns the value the key had before it (puts and compare-and-sets
//! report it too), so each one's output is checked, not only the reads'.
//! An operation whose outcome the client never learned (a timeout, a lost
//! response, the node died) has no output and no return: it may have taken
//! effect at any point after it was called, or never.

use std::collections::BTreeSet;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Read the key.
    Get,
    /// Set the key.
    Put(String),
    /// Set the key to `new` if it holds `expected`.
    Cas {
        /// The value the key must hold.
        expected: Option<String>,
        /// The new value.
        new: String,
    },
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The key.
    pub key: String,
    /// What was asked.
    pub input: Input,
    /// When it was called (any monotonic clock; ties are not concurrent
    /// only if call < return strictly, so use distinct stamps).
    pub call: u64,
    /// When it returned and what it reported (the key's previous value);
    /// `None`: the outcome is unknown.
    pub ret: Option<(u64, Option<String>)>,
}

/// Applies `input` to `state`; `Some(new state)` if `output` (when known)
/// is what the register would report.
fn step(state: &Option<String>, input: &Input, output: Option<&Option<String>>) -> Option<Option<String>> {
    if output.is_some_and(|o| o != state) {
        return None;
    }
    Some(match input {
        Input::Get => state.clone(),
        Input::Put(v) => Some(v.clone()),
        Input::Cas { expected, new } => {
            if state == expected {
                Some(new.clone())
            } else {
                state.clone()
            }
        }
    })
}

/// Cache entries one key's search may make before the check gives up
/// (and fails: a history it cannot decide is not passed).
const SEARCH_BUDGET: usize = 4_000_000;

/// The value an operation writes, if it writes one.
fn written(input: &Input) -> Option<&str> {
    match input {
        Input::Get => None,
        Input::Put(v) | Input::Cas { new: v, .. } => Some(v),
    }
}

/// Leaves out the unknown-outcome writes that can be left out without
/// changing the answer: a write of value `v` (values are unique per
/// write) that no operation ever reported and no compare-and-set expects.
/// If it took effect, every operation until the next put saw `v` — so
/// none with a known output did, and the ones between (unknown outcomes
/// that change nothing unless they expect `v`) can be left out with it.
/// Without this, each of them doubles the search.
fn prune(ops: Vec<&Operation>) -> Vec<&Operation> {
    let observed: BTreeSet<&str> = ops
        .iter()
        .filter_map(|o| o.ret.as_ref().and_then(|r| r.1.as_deref()))
        .chain(ops.iter().filter_map(|o| match &o.input {
            Input::Cas { expected: Some(e), .. } => Some(e.as_str()),
            _ => None,
        }))
        .collect();
    ops.into_iter().filter(|o| o.ret.is_some() || written(&o.input).is_some_and(|v| observed.contains(v))).collect()
}

/// Whether the history is linearizable; `Err` names the first key whose
/// history is not, with that key's operations.
pub fn check(history: &[Operation]) -> Result<(), String> {
    let keys: BTreeSet<&str> = history.iter().map(|o| o.key.as_str()).collect();
    for key in keys {
        let ops = prune(history.iter().filter(|o| o.key == key).collect());
        let verdict = check_key(&ops);
        if verdict.is_none() {
            return Err(format!(
                "key {key:?}: the search for a linearization of its {} operations ({} with unknown outcome) went past {SEARCH_BUDGET} states; the history could not be decided",
                ops.len(),
                ops.iter().filter(|o| o.ret.is_none()).count()
            ));
        }
        if verdict == Some(false) {
            let mut lines = String::new();
            for o in &ops {
                let ret = match &o.ret {
                    Some((t, out)) => format!("returned at {t}: {out:?}"),
                    None => "outcome unknown".into(),
                };
                lines.push_str(&format!("\n    {:?} called at {}, {ret}", o.input, o.call));
            }
            return Err(format!("key {key:?}: no linearization of its {} operations:{lines}", ops.len()));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Call,
    Return,
}

/// One key: the Wing–Gong search over a doubly linked list of call and
/// return events, with a cache of (linearized set, state) already explored.
/// `None`: the search went past [`SEARCH_BUDGET`].
#[allow(clippy::indexing_slicing, reason = "every index is an event or op position built here")]
fn check_key(ops: &[&Operation]) -> Option<bool> {
    // Events sorted by time; at the same stamp a return comes before a
    // call (those two operations were not concurrent). Unknown outcomes
    // return "never": after every other event.
    let mut events: Vec<(u64, u8, usize, Kind)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.call, 1, i, Kind::Call));
        events.push((o.ret.as_ref().map_or(u64::MAX, |r| r.0), 0, i, Kind::Return));
    }
    events.sort_by_key(|e| (e.0, e.1, e.2));
    let n = events.len();
    if n == 0 {
        return Some(true);
    }
    // A circular list through the sentinel `head` (index n).
    let head = n;
    let mut next: Vec<usize> = (1..=n).chain(std::iter::once(0)).collect();
    let mut prev: Vec<usize> = std::iter::once(head).chain(0..n - 1).chain(std::iter::once(n - 1)).collect();
    let mut ret_of = vec![0; ops.len()];
    for (pos, e) in events.iter().enumerate() {
        if let Kind::Return = e.3 {
            ret_of[e.2] = pos;
        }
    }
    let unlink = |next: &mut [usize], prev: &mut [usize], i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = q;
        prev[q] = p;
    };
    // Undoes `unlink(i)`: `i` still knows its neighbours.
    let relink = |next: &mut [usize], prev: &mut [usize], i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = i;
        prev[q] = i;
    };
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut cache: BTreeSet<(Vec<u64>, Option<String>)> = BTreeSet::new();
    let mut state: Option<String> = None;
    let mut stack: Vec<(usize, Option<String>)> = Vec::new();
    let mut entry = next[head];
    while next[head] != head {
        // Every listed call has its return listed after it, so the walk
        // meets a return before it comes back to the head.
        let (_, _, op, kind) = events[entry];
        match kind {
            Kind::Call => {
                let o = ops[op];
                let mut taken = false;
                if let Some(new_state) = step(&state, &o.input, o.ret.as_ref().map(|r| &r.1)) {
                    linearized[op / 64] |= 1 << (op % 64);
                    if cache.len() > SEARCH_BUDGET {
                        return None;
                    }
                    if cache.insert((linearized.clone(), new_state.clone())) {
                        stack.push((entry, std::mem::replace(&mut state, new_state)));
                        unlink(&mut next, &mut prev, entry);
                        unlink(&mut next, &mut prev, ret_of[op]);
                        entry = next[head];
                        taken = true;
                    } else {
                        linearized[op / 64] &= !(1 << (op % 64));
                    }
                }
                if !taken {
                    entry = next[entry];
                }
            }
            Kind::Return if ops[op].ret.is_none() => {
                // The first return left is an unknown outcome's: every
                // operation that returned is linearized, and the ones not
                // taken may never have happened.
                return Some(true);
            }
            Kind::Return => {
                let Some((call, old)) = stack.pop() else { return Some(false) };
                state = old;
                let undone = events[call].2;
                linearized[undone / 64] &= !(1 << (undone % 64));
                relink(&mut next, &mut prev, ret_of[undone]);
                relink(&mut next, &mut prev, call);
                entry = next[call];
            }
        }
    }
    Some(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn op(key: &str, input: Input, call: u64, ret: Option<(u64, Option<&str>)>) -> Operation {
        Operation { key: key.into(), input, call, ret: ret.map(|(t, v)| (t, v.map(String::from))) }
    }
    fn put(v: &str) -> Input {
        Input::Put(v.into())
    }

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable_pass() {
        // put a, then get a.
        let h = [op("k", put("a"), 1, Some((2, None))), op("k", Input::Get, 3, Some((4, Some("a"))))];
        assert!(check(&h).is_ok());
        // A read concurrent with a put may see either value.
        let h = [op("k", put("a"), 1, Some((4, None))), op("k", Input::Get, 2, Some((3, Some("a"))))];
        assert!(check(&h).is_ok());
        let h = [op("k", put("a"), 1, Some((4, None))), op("k", Input::Get, 2, Some((3, None)))];
        assert!(check(&h).is_ok());
        // A write whose outcome is unknown may have happened...
        let h = [op("k", put("a"), 1, None), op("k", Input::Get, 5, Some((6, Some("a"))))];
        assert!(check(&h).is_ok());
        // ...or not.
        let h = [op("k", put("a"), 1, None), op("k", Input::Get, 5, Some((6, None)))];
        assert!(check(&h).is_ok());
        // Keys are independent.
        let h = [op("x", put("1"), 1, Some((2, None))), op("y", Input::Get, 3, Some((4, None)))];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn known_non_linearizable_histories_are_caught() {
        // A stale read: the put returned before the get began.
        let h = [op("k", put("a"), 1, Some((2, None))), op("k", Input::Get, 3, Some((4, None)))];
        assert!(check(&h).is_err());
        // A value nobody wrote.
        let h = [op("k", Input::Get, 1, Some((2, Some("z"))))];
        assert!(check(&h).is_err());
        // Two reads see the two writes in opposite orders, sequentially.
        let h = [
            op("k", put("a"), 1, Some((10, None))),
            op("k", put("b"), 1, Some((10, Some("a")))),
            op("k", Input::Get, 11, Some((12, Some("a")))),
        ];
        assert!(check(&h).is_err());
        // A lost acknowledged write: put b returned, later read sees a.
        let h = [
            op("k", put("a"), 1, Some((2, None))),
            op("k", put("b"), 3, Some((4, Some("a")))),
            op("k", Input::Get, 5, Some((6, Some("a")))),
        ];
        let e = check(&h).unwrap_err();
        assert!(e.contains("key \"k\"") && e.contains("3 operations"), "{e}");
        // A compare-and-set that reports success against a value the key
        // could not have had.
        let h = [
            op("k", put("a"), 1, Some((2, None))),
            op("k", Input::Cas { expected: Some("b".into()), new: "c".into() }, 3, Some((4, Some("b")))),
        ];
        assert!(check(&h).is_err());
        // An unknown-outcome write nobody observed is left out, and the
        // history stays decidable however many there are.
        let mut h: Vec<Operation> = (0..200).map(|i| op("k", put(&format!("lost{i}")), 2 * i + 1, None)).collect();
        h.push(op("k", Input::Get, 1000, Some((1001, None))));
        assert!(check(&h).is_ok());
        // An unknown-outcome write cannot explain a read that came before
        // it was called.
        let h = [op("k", Input::Get, 1, Some((2, Some("a")))), op("k", put("a"), 3, None)];
        assert!(check(&h).is_err());
    }

    /// The brute force: some order of the operations that respects real
    /// time and the register, with each unknown outcome in or out.
    fn brute(ops: &[Operation]) -> bool {
        fn go(ops: &[Operation], used: &mut Vec<bool>, state: &Option<String>) -> bool {
            let all_known_done = ops.iter().zip(used.iter()).all(|(o, u)| *u || o.ret.is_none());
            if all_known_done {
                return true;
            }
            for i in 0..ops.len() {
                if used[i] {
                    continue;
                }
                // `i` may go next only if no unused op returned before it was called.
                let blocked = ops
                    .iter()
                    .zip(used.iter())
                    .enumerate()
                    .any(|(j, (o, u))| j != i && !*u && o.ret.as_ref().is_some_and(|r| r.0 < ops[i].call));
                if blocked {
                    continue;
                }
                if let Some(s) = step(state, &ops[i].input, ops[i].ret.as_ref().map(|r| &r.1)) {
                    used[i] = true;
                    if go(ops, used, &s) {
                        return true;
                    }
                    used[i] = false;
                }
            }
            false
        }
        go(ops, &mut vec![false; ops.len()], &None)
    }

    #[test]
    fn the_search_agrees_with_brute_force_on_random_small_histories() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..3000 {
            let n = rng.random_range(1..7);
            let vals = ["a", "b", "c"];
            let mut h = Vec::new();
            for _ in 0..n {
                let call = rng.random_range(0..20u64) * 2 + 1;
                let input = match rng.random_range(0..3) {
                    0 => Input::Get,
                    1 => put(vals[rng.random_range(0..3)]),
                    _ => Input::Cas {
                        expected: if rng.random_bool(0.3) { None } else { Some(vals[rng.random_range(0..3)].into()) },
                        new: vals[rng.random_range(0..3)].into(),
                    },
                };
                let ret = if rng.random_bool(0.15) {
                    None
                } else {
                    let out = if rng.random_bool(0.3) { None } else { Some(vals[rng.random_range(0..3)]) };
                    Some((call + 1 + rng.random_range(0..10u64) * 2, out))
                };
                h.push(op("k", input, call, ret));
            }
            let want = brute(&h);
            assert_eq!(check(&h).is_ok(), want, "{h:?}");
            if want { yes += 1 } else { no += 1 }
        }
        assert!(yes > 300 && no > 300, "both kinds of history must be tried: {yes} linearizable, {no} not");
    }
}
