//! permessage-deflate (RFC 7692): negotiation, and compression of single
//! messages without context takeover in either direction.

mod codec;
mod negotiate;

pub use codec::{Deflater, Inflater, MIN_COMPRESSED_SIZE};
pub use negotiate::{negotiate, Agreed};
