//! The journal's binary encoding (postcard). Compact and fast to decode, which is what makes a
//! million-event replay fit in a cold start; it is not self-describing, so event shapes only
//! ever gain variants at the end of an enum, never change a field in place.

use ordo_domain::Event;

pub fn encode_event(event: &Event) -> Vec<u8> {
    // Room for a captured order up front: growing from empty reallocated and copied the
    // buffer several times per event on the engine thread (~3 % of its time under HTTP load).
    postcard::to_extend(event, Vec::with_capacity(2_048)).expect("events always encode")
}

pub fn decode_event(bytes: &[u8]) -> Result<Event, postcard::Error> {
    postcard::from_bytes(bytes)
}
