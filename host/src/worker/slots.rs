//! The connection table: a fixed array of slots, one connection each, and
//! the edge-triggered hand-off between threads that may both want one.
//!
//! The epoll token of a connection is its slot index plus the slot's
//! generation, bumped at every close, so a stale event for a closed
//! connection whose slot was reused is recognised and dropped.
//!
//! A connection is registered once, edge-triggered: an event may be the
//! only news that input arrived. The thread that takes the event sets the
//! slot's `pending` flag, then tries the slot's lock. If another thread
//! holds it (a standby finishing a handler that blocked), it leaves; the
//! holder looks at `pending` again before it lets go, and serves the news
//! itself. So no edge is lost and no thread ever waits for a slot.

use super::conn::{Conn, Next};
use super::Shared;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub(super) struct Slot {
    /// Bumped at every close; the high half of the token.
    pub(super) generation: u32,
    pub(super) conn: Option<Box<Conn>>,
}

/// A slot and the flag that keeps an edge-triggered event from being lost
/// while another thread holds the slot (see `serve`).
#[derive(Debug, Default)]
pub(super) struct SlotCell {
    pub(super) slot: Mutex<Slot>,
    pub(super) pending: AtomicBool,
    /// Generation + 1 of the connection whose client shut its side
    /// (`EPOLLRDHUP`), 0 for none: news that must not be lost with the
    /// edge either, and must not reach the slot's next connection.
    hung_up: AtomicU64,
    /// An event since the holder last looked may have brought input (see
    /// `readable` in the worker): set before `pending`, taken after it.
    pub(super) readable: AtomicBool,
}

/// The epoll token of the connection in slot `index`.
pub(super) fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

/// Gives slot `index` back to the free list.
pub(super) fn release(shared: &Shared, index: u32) {
    if let Ok(mut free) = shared.free.lock() {
        free.push(index);
    }
}

/// Closes the connection in `slot` (the caller holds its lock).
pub(super) fn close(shared: &Shared, index: u32, slot: &mut Slot) {
    if slot.conn.take().is_some() {
        slot.generation = slot.generation.wrapping_add(1);
        let open = shared.open.fetch_sub(1, Ordering::AcqRel) - 1;
        shared.balance.publish(open);
        release(shared, index);
        shared.gate.resume(shared);
    }
}

/// Handles an event for the connection with `token`; `hung_up`: the event
/// says the client has shut its side; `readable`: it may bring input.
pub(super) fn serve(shared: &Shared, token: u64, hung_up: bool, readable: bool) {
    let index = (token & 0xffff_ffff) as u32;
    let generation = (token >> 32) as u32;
    let Some(cell) = shared.slots.get(index as usize) else {
        return;
    };
    // The connection is registered edge-triggered, so this event may be the
    // only news of what just arrived. Another thread may hold the slot (a
    // standby finishing a handler that blocked): flag the news, and whoever
    // holds the slot looks at the flag again before it lets go. A short
    // read in `on_ready` means the socket was drained at that moment; what
    // arrives later raises a new edge.
    if hung_up {
        cell.hung_up
            .store(u64::from(generation) + 1, Ordering::SeqCst);
    }
    if readable {
        cell.readable.store(true, Ordering::SeqCst);
    }
    cell.pending.store(true, Ordering::SeqCst);
    loop {
        let Ok(mut slot) = cell.slot.try_lock() else {
            return; // the holder will see `pending`
        };
        if !cell.pending.swap(false, Ordering::SeqCst) {
            return; // someone else already handled it
        }
        if slot.generation != generation {
            return; // stale event for a connection closed meanwhile
        }
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        let hung_up = cell.hung_up.load(Ordering::SeqCst) == u64::from(generation) + 1;
        let readable = cell.readable.swap(false, Ordering::SeqCst);
        // Read or Write: nothing to do but wait for the next edge.
        if conn.on_ready(shared, hung_up, readable) == Next::Close {
            return close(shared, index, &mut slot);
        }
        drop(slot);
        if !cell.pending.load(Ordering::SeqCst) {
            return;
        }
    }
}
