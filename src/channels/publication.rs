//! A message on its way to a channel, framed once per wire form.

use bytes::Bytes;

use crate::handle::Prepared;

/// How many wire forms one publication may carry.
pub(crate) const DIALECTS: usize = 4;

/// The wire form a channel member receives: chosen by the application when
/// it subscribes the connection (say raw text for a chat room client, a
/// Pusher JSON envelope for a Pusher client). Members of one channel may
/// use different dialects; each gets the frame of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dialect(u8);

impl Dialect {
    /// The dialect of [`Publication::single`] and of plain subscriptions.
    pub const DEFAULT: Dialect = Dialect(0);

    /// Dialect number `n`; `None` unless `n` is below 4.
    pub const fn new(n: u8) -> Option<Dialect> {
        if (n as usize) < DIALECTS {
            Some(Dialect(n))
        } else {
            None
        }
    }

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A message for a channel, framed once per dialect. Members whose dialect
/// has no frame here receive nothing from it.
#[derive(Debug, Clone, Default)]
pub struct Publication {
    frames: [Option<Bytes>; DIALECTS],
    /// Each frame's compressed form, made once by the first worker that
    /// needs it and shared by the others (the publication is cloned, not
    /// copied, to every worker).
    deflated: [crate::bus::DeflateCache; DIALECTS],
}

impl Publication {
    /// A publication with no frames yet.
    pub fn new() -> Self {
        Publication::default()
    }

    /// The same frame for the default dialect only.
    pub fn single(prepared: &Prepared) -> Self {
        Publication::new().with(Dialect::DEFAULT, prepared)
    }

    /// Sets the frame members of `dialect` receive.
    pub fn with(mut self, dialect: Dialect, prepared: &Prepared) -> Self {
        self.frames[dialect.index()] = Some(prepared.frame.clone());
        self
    }

    /// Sets the frame members of `dialect` receive to bytes already framed
    /// (a publication that came from another node).
    pub(crate) fn with_frame(mut self, dialect: Dialect, frame: Bytes) -> Self {
        self.frames[dialect.index()] = Some(frame);
        self
    }

    /// The frame for `dialect`, if any.
    pub(crate) fn frame(&self, dialect: Dialect) -> Option<&Bytes> {
        self.frames[dialect.index()].as_ref()
    }

    /// The frame for `dialect` as compressing members get it (compressed
    /// with `deflate` by the first worker to ask, where that pays).
    pub(crate) fn deflated_frame(
        &self,
        dialect: Dialect,
        deflate: impl FnOnce(&Bytes) -> Option<Bytes>,
    ) -> Option<Bytes> {
        let frame = self.frame(dialect)?;
        Some(self.deflated[dialect.index()].get_or_deflate(frame, deflate))
    }

    /// Bytes of every frame: what it costs against an inbox's bound.
    pub(crate) fn bytes(&self) -> usize {
        self.frames.iter().flatten().map(Bytes::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn each_dialect_gets_its_own_frame_and_others_none() {
        let raw = Prepared::new(&Message::text("hi"));
        let envelope = Prepared::new(&Message::text("{\"event\":\"m\",\"data\":\"hi\"}"));
        let pusher = Dialect::new(1).expect("a dialect");
        let publication = Publication::single(&raw).with(pusher, &envelope);
        assert_eq!(publication.frame(Dialect::DEFAULT).map(|f| &f[..]), Some(raw.wire_bytes()));
        assert_eq!(publication.frame(pusher).map(|f| &f[..]), Some(envelope.wire_bytes()));
        assert!(publication.frame(Dialect::new(2).expect("a dialect")).is_none());
        assert_eq!(publication.bytes(), raw.wire_bytes().len() + envelope.wire_bytes().len());
    }

    #[test]
    fn only_four_dialects_exist() {
        assert!(Dialect::new(3).is_some());
        assert!(Dialect::new(4).is_none());
    }

    #[test]
    fn a_frame_is_compressed_once_for_every_clone_of_the_publication() {
        let publication = Publication::single(&Prepared::new(&Message::text("x".repeat(500))));
        let on_another_worker = publication.clone();
        let mut calls = 0;
        let made = on_another_worker.deflated_frame(Dialect::DEFAULT, |_| {
            calls += 1;
            Some(Bytes::from_static(b"compressed"))
        });
        let reused = publication.deflated_frame(Dialect::DEFAULT, |_| {
            calls += 1;
            None
        });
        assert_eq!(
            (made.as_deref(), reused.as_deref(), calls),
            (Some(&b"compressed"[..]), Some(&b"compressed"[..]), 1)
        );
        let plain = Publication::single(&Prepared::new(&Message::text("tiny")));
        assert_eq!(plain.deflated_frame(Dialect::DEFAULT, |_| None), plain.frame(Dialect::DEFAULT).cloned());
    }
}
