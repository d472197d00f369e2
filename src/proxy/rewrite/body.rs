//! A rewriter behind an optional decoder: what the proxy's response phase drives.
//!
//! The OUTPUT IS ALWAYS IDENTITY-ENCODED: the caller removes `Content-Encoding` and
//! `Content-Length` and sends the rewritten plain body. This is deliberate: the gateway spends no
//! CPU recompressing, and identity is always acceptable to a client that sent
//! `Accept-Encoding: gzip`.
//!
//! Memory: compressed input is fed to flate2's push decoders in slices of at most [`SLICE`]
//! bytes, and what each decoder call produces is drained into the rewriter at once, so the
//! decoding state is fixed whatever the data: flate2's 32 KiB window and 32 KiB output buffer,
//! plus at most 64 KiB of decoded bytes waiting to be drained (128 KiB of `Vec` capacity at
//! worst). What one [`BodyRewriter::push`] RETURNS is the decoded form of that one chunk: at
//! worst about 1032 × `chunk.len()` bytes (deflate's maximum expansion: a 16 KiB frame of a
//! decompression bomb yields about 16.5 MiB), plus the growth of rewritten URLs. A caller that
//! wants a smaller worst case splits frames before pushing them.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

use super::{Encoding, JsonRewriter, JsonTarget, RewriteError, RewriteKind, TextRewriter};

/// Compressed input is handed to the decoder at most this many bytes at a time.
pub const SLICE: usize = 8 * 1024;

#[derive(Debug)]
enum Rewriter {
    Json(JsonRewriter),
    Text(TextRewriter),
}

impl Rewriter {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Json(r) => r.push(chunk, out),
            Self::Text(r) => r.push(chunk, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Self::Json(r) => r.finish(out),
            Self::Text(r) => r.finish(out),
        }
    }

    fn held_back(&self) -> usize {
        match self {
            Self::Json(r) => r.held_back(),
            Self::Text(r) => r.held_back(),
        }
    }
}

/// A flate2 push decoder writing into a `Vec` that is drained after every call.
trait Inflate: Write + Send + Sync + fmt::Debug {
    fn decoded(&mut self) -> &mut Vec<u8>;
    fn end(&mut self) -> io::Result<()>;
}

macro_rules! impl_inflate {
    ($($t:ident),*) => {$(
        impl Inflate for $t<Vec<u8>> {
            fn decoded(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
            fn end(&mut self) -> io::Result<()> {
                self.try_finish()
            }
        }
    )*};
}
impl_inflate!(MultiGzDecoder, ZlibDecoder, DeflateDecoder);

#[derive(Debug)]
enum Decoder {
    Identity,
    /// Deflate before its first two bytes are known: zlib header or raw deflate?
    Sniffing(Option<u8>),
    Inflating(Box<dyn Inflate>),
    /// Finished, or failed: any further use is [`RewriteError::Closed`].
    Closed,
}

/// Decodes (if needed) and rewrites one response body, chunk by chunk.
#[derive(Debug)]
pub struct BodyRewriter {
    encoding: Encoding,
    decoder: Decoder,
    rewriter: Rewriter,
    /// Whether any input arrived: an empty body is complete whatever its encoding says.
    started: bool,
}

impl BodyRewriter {
    pub fn new(kind: RewriteKind, encoding: Encoding, from: &str, to: &str) -> Self {
        let rewriter = match kind {
            RewriteKind::Json => Rewriter::Json(JsonRewriter::new(from, to)),
            RewriteKind::Text => Rewriter::Text(TextRewriter::new(from, to)),
        };
        Self::with(rewriter, encoding)
    }

    /// A JSON body's rewriter on a prepared [`JsonTarget`].
    pub fn json(encoding: Encoding, target: Arc<JsonTarget>) -> Self {
        Self::with(Rewriter::Json(JsonRewriter::with_target(target)), encoding)
    }

    fn with(rewriter: Rewriter, encoding: Encoding) -> Self {
        let decoder = match encoding {
            Encoding::Identity => Decoder::Identity,
            Encoding::Gzip => Decoder::Inflating(Box::new(MultiGzDecoder::new(Vec::new()))),
            Encoding::Deflate => Decoder::Sniffing(None),
        };
        Self {
            encoding,
            decoder,
            rewriter,
            started: false,
        }
    }

    /// The decoded, rewritten bytes that `chunk` makes available. After an error the rewriter is
    /// closed and every later call fails with [`RewriteError::Closed`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, RewriteError> {
        let mut out = Vec::with_capacity(chunk.len());
        let result = self.push_into(chunk, &mut out);
        if result.is_err() {
            self.decoder = Decoder::Closed;
        }
        result.map(|()| Bytes::from(out))
    }

    /// The rest of the body. Fails if the compressed stream is truncated or its checksum is
    /// wrong. The rewriter is closed afterwards.
    pub fn finish(&mut self) -> Result<Bytes, RewriteError> {
        let mut out = Vec::new();
        self.finish_into(&mut out)?;
        Ok(Bytes::from(out))
    }

    /// [`Self::push`] of the body's last chunk and [`Self::finish`], in one buffer: what the two
    /// would return, joined. A plain JSON body is finished by [`JsonRewriter::push_last`], which
    /// stops lexing after the last place a URL could start.
    pub fn push_last(&mut self, chunk: &[u8]) -> Result<Bytes, RewriteError> {
        let mut out = Vec::with_capacity(chunk.len());
        if let (Decoder::Identity, Rewriter::Json(json)) = (&self.decoder, &mut self.rewriter) {
            json.push_last(chunk, &mut out);
            self.decoder = Decoder::Closed;
            return Ok(Bytes::from(out));
        }
        let result = self
            .push_into(chunk, &mut out)
            .and_then(|()| self.finish_into(&mut out));
        if result.is_err() {
            self.decoder = Decoder::Closed;
        }
        result.map(|()| Bytes::from(out))
    }

    fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let decoder = std::mem::replace(&mut self.decoder, Decoder::Closed);
        match decoder {
            Decoder::Sniffing(Some(_)) => {
                let source =
                    io::Error::new(io::ErrorKind::UnexpectedEof, "one-byte deflate stream");
                return Err(RewriteError::Corrupt {
                    encoding: self.encoding,
                    source,
                });
            }
            Decoder::Inflating(mut inflate) if self.started => {
                let encoding = self.encoding;
                inflate
                    .end()
                    .map_err(|source| RewriteError::Corrupt { encoding, source })?;
                drain(inflate.as_mut(), &mut self.rewriter, out);
            }
            // Identity needs no decoding; a decoder that got no input means an empty body.
            Decoder::Identity | Decoder::Sniffing(None) | Decoder::Inflating(_) => {}
            Decoder::Closed => return Err(RewriteError::Closed),
        }
        self.rewriter.finish(out);
        Ok(())
    }

    /// Bytes held back between calls: the rewriter's (see [`JsonRewriter::max_held_back`]) plus
    /// at most one byte while sniffing a deflate stream.
    pub fn held_back(&self) -> usize {
        let sniffed = usize::from(matches!(self.decoder, Decoder::Sniffing(Some(_))));
        self.rewriter.held_back() + sniffed
    }

    fn push_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        self.started |= !chunk.is_empty();
        match &mut self.decoder {
            Decoder::Identity => {
                self.rewriter.push(chunk, out);
                Ok(())
            }
            Decoder::Inflating(inflate) => inflate_into(
                inflate.as_mut(),
                &mut self.rewriter,
                self.encoding,
                chunk,
                out,
            ),
            Decoder::Sniffing(first) => {
                let first = *first;
                self.sniff(first, chunk, out)
            }
            Decoder::Closed => Err(RewriteError::Closed),
        }
    }

    /// HTTP "deflate" is meant to be zlib, but some servers send raw deflate: the first two bytes
    /// tell them apart (a zlib header is `CM = 8` and a multiple of 31).
    fn sniff(
        &mut self,
        first: Option<u8>,
        chunk: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        let (cmf, rest) = match (first, chunk.split_first()) {
            (Some(cmf), _) => (cmf, chunk),
            (None, Some((&cmf, rest))) => (cmf, rest),
            (None, None) => return Ok(()),
        };
        let Some(&flg) = rest.first() else {
            self.decoder = Decoder::Sniffing(Some(cmf));
            return Ok(());
        };
        let zlib =
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0;
        self.decoder = Decoder::Inflating(if zlib {
            Box::new(ZlibDecoder::new(Vec::new()))
        } else {
            Box::new(DeflateDecoder::new(Vec::new()))
        });
        self.push_into(&[cmf], out)?;
        self.push_into(rest, out)
    }
}

/// Feeds `input` to the decoder in slices of at most [`SLICE`] bytes, draining what each call
/// decodes into the rewriter, then flushes the decoder so nothing decodable is left inside it.
fn inflate_into(
    inflate: &mut dyn Inflate,
    rewriter: &mut Rewriter,
    encoding: Encoding,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RewriteError> {
    let corrupt = |source| RewriteError::Corrupt { encoding, source };
    while !input.is_empty() {
        let used = inflate
            .write(&input[..input.len().min(SLICE)])
            .map_err(corrupt)?;
        if used == 0 {
            return Err(RewriteError::TrailingData(encoding));
        }
        input = &input[used..];
        drain(inflate, rewriter, out);
    }
    inflate.flush().map_err(corrupt)?;
    drain(inflate, rewriter, out);
    Ok(())
}

fn drain(inflate: &mut dyn Inflate, rewriter: &mut Rewriter, out: &mut Vec<u8>) {
    let decoded = inflate.decoded();
    rewriter.push(decoded, out);
    decoded.clear();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;
    use crate::proxy::rewrite::tests::{FROM, JSON_BODIES, Lcg, TO, feed_json};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// `body` as each encoding sends it (deflate both as zlib and raw).
    fn encoded(body: &str) -> [(Encoding, Vec<u8>); 4] {
        [
            (Encoding::Identity, body.as_bytes().to_vec()),
            (Encoding::Gzip, gzip(body.as_bytes())),
            (Encoding::Deflate, zlib(body.as_bytes())),
            (Encoding::Deflate, raw_deflate(body.as_bytes())),
        ]
    }

    /// Pushes `input` in chunks of 1..=97 bytes, then finishes.
    fn run(
        kind: RewriteKind,
        encoding: Encoding,
        input: &[u8],
        rng: &mut Lcg,
    ) -> Result<Vec<u8>, RewriteError> {
        feed(kind, encoding, input, rng, false)
    }

    /// [`run`] with the last chunk given to `push_last` instead of `push` and `finish`.
    fn run_last(
        kind: RewriteKind,
        encoding: Encoding,
        input: &[u8],
        rng: &mut Lcg,
    ) -> Result<Vec<u8>, RewriteError> {
        feed(kind, encoding, input, rng, true)
    }

    fn feed(
        kind: RewriteKind,
        encoding: Encoding,
        input: &[u8],
        rng: &mut Lcg,
        last: bool,
    ) -> Result<Vec<u8>, RewriteError> {
        let mut body = BodyRewriter::new(kind, encoding, FROM, TO);
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at((1 + rng.below(97)).min(rest.len()));
            if last && tail.is_empty() {
                out.extend_from_slice(&body.push_last(chunk)?);
                assert!(matches!(body.push(b"x"), Err(RewriteError::Closed)));
                return Ok(out);
            }
            out.extend_from_slice(&body.push(chunk)?);
            assert!(body.held_back() <= FROM.len() + 3 + 1);
            rest = tail;
        }
        out.extend_from_slice(&body.finish()?);
        Ok(out)
    }

    #[test]
    fn every_encoding_round_trips_to_the_plain_rewrite() {
        let mut rng = Lcg(3);
        for body in JSON_BODIES {
            let want = feed_json(body.as_bytes(), &[], FROM, TO);
            for (encoding, input) in encoded(body) {
                let got = run(RewriteKind::Json, encoding, &input, &mut rng).unwrap();
                assert_eq!(got, want, "{encoding} {body}");
            }
        }
    }

    #[test]
    fn the_last_chunk_finishes_the_body_as_push_and_finish_do() {
        let mut rng = Lcg(4);
        for body in JSON_BODIES {
            let want = feed_json(body.as_bytes(), &[], FROM, TO);
            for (encoding, input) in encoded(body) {
                for kind in [RewriteKind::Json, RewriteKind::Text] {
                    let got = run_last(kind, encoding, &input, &mut rng).unwrap();
                    let plain = run(kind, encoding, &input, &mut rng).unwrap();
                    assert_eq!(got, plain, "{encoding} {kind:?} {body}");
                    if kind == RewriteKind::Json {
                        assert_eq!(got, want, "{encoding} {body}");
                    }
                }
            }
        }
        // A truncated stream fails in the last chunk as it fails in `finish`.
        let truncated = gzip(JSON_BODIES[0].as_bytes());
        let truncated = &truncated[..truncated.len() - 4];
        let err = run_last(RewriteKind::Json, Encoding::Gzip, truncated, &mut rng).unwrap_err();
        assert!(matches!(err, RewriteError::Corrupt { .. }), "{err}");
        let mut body = BodyRewriter::new(RewriteKind::Json, Encoding::Gzip, FROM, TO);
        assert!(body.push_last(truncated).is_err());
        assert!(matches!(body.push(b"x"), Err(RewriteError::Closed)));
    }

    #[test]
    fn text_bodies_and_multi_member_gzip() {
        let body = format!("Location: {FROM}/a\r\n\r\n{{\"@odata.id\":\"{FROM}/b\"}}");
        let want = format!("Location: {TO}/a\r\n\r\n{{\"@odata.id\":\"{TO}/b\"}}");
        let (head, tail) = body.split_at(20);
        let input = [gzip(head.as_bytes()), gzip(tail.as_bytes())].concat();
        let got = run(RewriteKind::Text, Encoding::Gzip, &input, &mut Lcg(5)).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    #[test]
    fn empty_bodies_are_empty_whatever_the_encoding() {
        for encoding in [Encoding::Identity, Encoding::Gzip, Encoding::Deflate] {
            let mut body = BodyRewriter::new(RewriteKind::Json, encoding, FROM, TO);
            assert!(body.push(b"").unwrap().is_empty());
            assert!(body.finish().unwrap().is_empty());
        }
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let plain = JSON_BODIES[0].as_bytes();
        let mut flipped = gzip(plain);
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        let mut bad_crc = gzip(plain);
        let crc = bad_crc.len() - 8;
        bad_crc[crc] ^= 1;
        let good = gzip(plain);
        let cases = [
            (Encoding::Gzip, flipped),
            (Encoding::Gzip, bad_crc),
            (Encoding::Gzip, good[..good.len() - 3].to_vec()),
            (Encoding::Gzip, [good.as_slice(), b"junk"].concat()),
            (Encoding::Gzip, b"not gzip at all".to_vec()),
            (Encoding::Deflate, zlib(plain)[..20].to_vec()),
            (
                Encoding::Deflate,
                [zlib(plain).as_slice(), b"junk"].concat(),
            ),
            (Encoding::Deflate, vec![0x78]),
            (Encoding::Deflate, vec![0xff; 64]),
        ];
        for (i, (encoding, input)) in cases.iter().enumerate() {
            let result = run(RewriteKind::Json, *encoding, input, &mut Lcg(i as u64));
            assert!(result.is_err(), "case {i} should fail");
        }
    }

    #[test]
    fn a_failed_or_finished_rewriter_stays_closed() {
        let mut body = BodyRewriter::new(RewriteKind::Json, Encoding::Gzip, FROM, TO);
        assert!(matches!(
            body.push(b"this is not a gzip stream"),
            Err(RewriteError::Corrupt { .. })
        ));
        assert!(matches!(body.push(b"more"), Err(RewriteError::Closed)));
        assert!(matches!(body.finish(), Err(RewriteError::Closed)));
        let mut body = BodyRewriter::new(RewriteKind::Json, Encoding::Identity, FROM, TO);
        body.finish().unwrap();
        assert!(matches!(body.push(b"{}"), Err(RewriteError::Closed)));
    }

    #[test]
    fn a_decompression_bomb_is_decoded_in_bounded_steps() {
        // 32 gzip members of 1 MiB of zeros each: 32 MiB from a few tens of KiB.
        let member = gzip(&vec![0; 1 << 20]);
        let bomb = member.repeat(32);
        let mut body = BodyRewriter::new(RewriteKind::Json, Encoding::Gzip, FROM, TO);
        let (mut decoded, mut largest_push, mut largest_buffer) = (0, 0, 0);
        for chunk in bomb.chunks(4096) {
            let out = body.push(chunk).unwrap();
            largest_push = largest_push.max(out.len());
            decoded += out.len();
            if let Decoder::Inflating(inflate) = &mut body.decoder {
                largest_buffer = largest_buffer.max(inflate.decoded().capacity());
            }
        }
        decoded += body.finish().unwrap().len();
        assert_eq!(decoded, 32 << 20);
        assert!(largest_push <= 1032 * 4096 + 64 * 1024, "{largest_push}");
        // At most two 32 KiB decoder buffers wait at once; Vec doubling may round that up.
        assert!(
            largest_buffer <= 128 * 1024,
            "decoder output buffer grew to {largest_buffer}"
        );
    }

    #[test]
    fn the_body_rewriter_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<BodyRewriter>();
    }
}
