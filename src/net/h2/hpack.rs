//! Header blocks passed from one HTTP/2 peer to another (RFC 7541).
//!
//! HPACK is stateful per direction and per connection: a relay that drops, adds or changes
//! any header block must decode every block from the sender (to follow its dynamic table)
//! and encode what it forwards for the receiver. Decoding is `loona-hpack`'s, after one
//! pass of ours that rewrites every Huffman-coded string as a plain one (see `huffman` for
//! why): the block keeps its representations, indexes and table updates, so the crate's
//! table logic sees what the sender meant. Encoding is ours and deliberately trivial: every
//! field goes out as a *literal never indexed* with a literal name (§6.2.3), so the relay
//! keeps no encoder table, its blocks are valid whatever the receiver's table holds, and a
//! field the sender marked never-indexed stays so. The bytes spent on a unix socket are
//! negligible; `loona-hpack`'s encoder always indexes, which would tie the relay to the
//! receiver's SETTINGS_HEADER_TABLE_SIZE.

use loona_hpack::decoder::{DecoderError, IntegerDecodingError, StringDecodingError};
use loona_hpack::encoder::encode_integer_into;

use super::huffman;

/// Decodes a sender's header blocks, following its dynamic table.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
    /// The block being decoded with its strings unhuffmaned, and one string: kept to
    /// reuse their allocations from block to block.
    plain: Vec<u8>,
    string: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(super::DEFAULT_TABLE_SIZE);
        Self {
            inner,
            plain: Vec::new(),
            string: Vec::new(),
        }
    }
}

impl Decoder {
    /// The SETTINGS_HEADER_TABLE_SIZE the receiver advertised: the most the sender may set
    /// its table to. A size update past it is a decoding error, as at the receiver.
    pub fn allow_table_size(&mut self, size: usize) {
        self.inner.set_max_allowed_table_size(size);
    }

    /// Decodes `block`, handing each field to `field` in order.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecoderError> {
        unhuffman(block, &mut self.plain, &mut self.string)?;
        self.inner.decode_with_cb(&self.plain, |n, v| field(&n, &v))
    }
}

/// Copies `block` to `out` with every Huffman-coded string (§5.2) replaced by its plain
/// form: the same representations in the same order, so decoding `out` is decoding
/// `block`. Only the framing of §6 is read here; indexes are left to the decoder.
fn unhuffman(block: &[u8], out: &mut Vec<u8>, string: &mut Vec<u8>) -> Result<(), DecoderError> {
    out.clear();
    let mut rest = block;
    while let Some(&first) = rest.first() {
        // (prefix bits of the integer that starts the representation, strings that follow
        // when the name is literal): indexed (§6.1), literal with incremental indexing
        // (§6.2.1), dynamic table size update (§6.3), literal without or never indexed.
        let (prefix, strings) = match first {
            b if b & 0x80 != 0 => (7, 0),
            b if b & 0x40 != 0 => (6, 2),
            b if b & 0x20 != 0 => (5, 0),
            _ => (4, 2),
        };
        let (index, used) = integer(rest, prefix)?;
        out.extend_from_slice(&rest[..used]);
        rest = &rest[used..];
        let strings = if strings == 2 && index != 0 {
            1
        } else {
            strings
        };
        for _ in 0..strings {
            rest = plain_string(rest, out, string)?;
        }
    }
    Ok(())
}

/// Copies one string literal from the front of `rest` to `out`, decoding Huffman; returns
/// what follows it.
fn plain_string<'a>(
    rest: &'a [u8],
    out: &mut Vec<u8>,
    string: &mut Vec<u8>,
) -> Result<&'a [u8], DecoderError> {
    let short = DecoderError::StringDecodingError(StringDecodingError::NotEnoughOctets);
    let huffman = rest.first().ok_or(short)? & 0x80 != 0;
    let (len, used) = integer(rest, 7)?;
    let end = used
        .checked_add(len)
        .filter(|&end| end <= rest.len())
        .ok_or(short)?;
    if huffman {
        string.clear();
        huffman::decode(&rest[used..end], string).map_err(|e| {
            DecoderError::StringDecodingError(StringDecodingError::HuffmanDecoderError(e))
        })?;
        // Writing to a Vec cannot fail.
        let _ = encode_integer_into(string.len(), 7, 0, &mut *out);
        out.extend_from_slice(string);
    } else {
        out.extend_from_slice(&rest[..end]);
    }
    Ok(&rest[end..])
}

/// An HPACK integer with a `prefix`-bit prefix (§5.1): its value and the octets it used.
/// At most four continuation octets, as `loona-hpack` allows.
fn integer(buf: &[u8], prefix: u8) -> Result<(usize, usize), DecoderError> {
    let err = |e| DecoderError::IntegerDecodingError(e);
    let mask = ((1u16 << prefix) - 1) as u8;
    let first = buf
        .first()
        .ok_or(err(IntegerDecodingError::NotEnoughOctets))?
        & mask;
    if first < mask {
        return Ok((first as usize, 1));
    }
    let mut value = mask as usize;
    for (i, &octet) in buf[1..].iter().enumerate() {
        if i == 4 {
            return Err(err(IntegerDecodingError::TooManyOctets));
        }
        value += ((octet & 0x7f) as usize) << (7 * i);
        if octet & 0x80 == 0 {
            return Ok((value, i + 2));
        }
    }
    Err(err(IntegerDecodingError::NotEnoughOctets))
}

/// Appends one field as a literal never indexed, with a literal name and no Huffman coding.
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x10);
    encode_string(out, name);
    encode_string(out, value);
}

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = encode_integer_into(s.len(), 7, 0, out);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut Decoder, block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut fields = Vec::new();
        decoder
            .decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())))
            .unwrap();
        fields
    }

    #[test]
    fn re_encoded_fields_decode_to_the_same_list_with_an_untouched_table() {
        // A sender that indexes and Huffman-codes (loona's encoder indexes), a relay that
        // re-encodes, and a receiver that must see the same fields, twice in a row.
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":path", b"/containerd.services.version.v1.Version/Version"),
            (b":authority", b"/run/containerd/containerd.sock"),
            (b"content-type", b"application/grpc"),
            (b"x-long", &[b'v'; 300]),
        ];
        let mut sender = loona_hpack::Encoder::new();
        let mut relay = Decoder::default();
        let mut receiver = Decoder::default();
        for _ in 0..2 {
            let block = sender.encode(fields.iter().copied());
            let mut forwarded = Vec::new();
            relay
                .decode(&block, |n, v| encode_field(&mut forwarded, n, v))
                .unwrap();
            let seen = decode_all(&mut receiver, &forwarded);
            let want: Vec<_> = fields
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn empty_and_odd_values_pass_as_they_are() {
        let mut out = Vec::new();
        encode_field(&mut out, b":authority", b"");
        encode_field(&mut out, b"x-bin", &[0, 255, b'\n']);
        let seen = decode_all(&mut Decoder::default(), &out);
        assert_eq!(seen[0], (b":authority".to_vec(), Vec::new()));
        assert_eq!(seen[1].1, vec![0, 255, b'\n']);
    }

    #[test]
    fn table_size_updates_past_the_advertised_size_are_refused() {
        let mut block = Vec::new();
        encode_integer_into(8192, 5, 0x20, &mut block).unwrap();
        encode_field(&mut block, b"a", b"b");
        let mut d = Decoder::default();
        assert!(d.decode(&block, |_, _| {}).is_err());
        let mut d = Decoder::default();
        d.allow_table_size(8192);
        assert!(d.decode(&block, |_, _| {}).is_ok());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Decoder::default();
        for block in [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x7f],
            &[0x10, 0x85, 1],
        ] {
            assert!(d.decode(block, |_, _| {}).is_err());
        }
    }

    #[test]
    fn huffman_coded_blocks_decode_as_h2_meant_them() {
        // What tonic (through h2) sends: indexed fields, literals with Huffman-coded
        // strings added to the table, and a second block that refers to them.
        use httlib_hpack::Encoder;
        let mut encoder = Encoder::default();
        let mut d = Decoder::default();
        let flags = Encoder::HUFFMAN_NAME
            | Encoder::HUFFMAN_VALUE
            | Encoder::WITH_INDEXING
            | Encoder::BEST_FORMAT;
        for _ in 0..3 {
            let mut block = Vec::new();
            for (name, value) in [
                (":method", "POST"),
                (":path", "/containerd.services.version.v1.Version/Version"),
                ("user-agent", "tonic/0.12.3"),
                ("containerd-namespace", "k8s.io"),
                ("x-odd", "\u{0}\u{ff}~|"),
            ] {
                let field = (name.as_bytes().to_vec(), value.as_bytes().to_vec(), flags);
                encoder.encode(field, &mut block).unwrap();
            }
            let got = decode_all(&mut d, &block);
            assert_eq!(got[1].1, b"/containerd.services.version.v1.Version/Version");
            assert_eq!(
                got[3],
                (b"containerd-namespace".to_vec(), b"k8s.io".to_vec())
            );
            assert_eq!(got[4].1, "\u{0}\u{ff}~|".as_bytes());
        }
    }

    #[test]
    fn truncated_representations_are_errors() {
        let mut block = Vec::new();
        encode_field(&mut block, b"name", b"value");
        for cut in 1..block.len() {
            assert!(
                Decoder::default().decode(&block[..cut], |_, _| {}).is_err(),
                "{cut}"
            );
        }
        // A Huffman string whose length runs past the block, and one with an EOS.
        assert!(Decoder::default()
            .decode(&[0x10, 0x81, b'a', 0x85], |_, _| {})
            .is_err());
        let eos = [0x10, 0x01, b'a', 0x84, 0xff, 0xff, 0xff, 0xff];
        assert!(Decoder::default().decode(&eos, |_, _| {}).is_err());
    }
}
