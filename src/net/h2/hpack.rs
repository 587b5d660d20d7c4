//! Header blocks passed from one HTTP/2 peer to another (RFC 7541).
//!
//! HPACK is stateful per direction and per connection: a relay that drops, adds or changes
//! any header block must decode every block from the sender (to follow its dynamic table)
//! and encode what it forwards for the receiver. Decoding is `loona-hpack`'s. Encoding is
//! ours and deliberately trivial: every field goes out as a *literal never indexed* with a
//! literal name (§6.2.3), so the relay keeps no encoder table, its blocks are valid whatever
//! the receiver's table holds, and a field the sender marked never-indexed stays so. The
//! bytes spent on a unix socket are negligible; `loona-hpack`'s encoder always indexes,
//! which would tie the relay to the receiver's SETTINGS_HEADER_TABLE_SIZE.

use loona_hpack::decoder::DecoderError;
use loona_hpack::encoder::encode_integer_into;

/// Decodes a sender's header blocks, following its dynamic table.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
}

impl Default for Decoder {
    fn default() -> Self {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(super::DEFAULT_TABLE_SIZE);
        Self { inner }
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
        self.inner.decode_with_cb(block, |n, v| field(&n, &v))
    }
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
}
