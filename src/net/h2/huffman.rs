//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B), decoding only.
//!
//! Hand-rolled because the kept HPACK crates are slow exactly here: `loona-hpack` (like
//! `hpack` and `fluke-hpack`, its ancestors) builds a fresh table of nested SipHash maps
//! for every Huffman-coded string and then walks it bit by bit. Measured on the proxy's
//! unary bench (`perf record`, 2026-11-30), that construction and its hashing were the
//! relay's largest user-space cost, most of a grpc-go or tonic request's header block being
//! Huffman-coded. `h2` has a fast decoder but keeps it private.
//!
//! The code of Appendix B is canonical (codes of one length are consecutive and follow all
//! shorter ones; a unit test checks that against `loona-hpack`), so the code lengths alone
//! define it. Decoding peeks 32 bits, finds the code length by comparing with the
//! left-justified upper bound of each length, and looks the symbol up: no table per
//! string, no allocation but the output.

use loona_hpack::huffman::HuffmanDecoderError;

/// Code length of each symbol, 0..=255 and EOS (256), from RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;
const MIN_LEN: usize = 5;
const MAX_LEN: usize = 30;

/// The canonical code, derived from `LENGTHS` at compile time.
struct Code {
    /// Left-justified (in 32 bits) exclusive upper bound of the codes of each length.
    limit: [u64; MAX_LEN + 1],
    /// First code of each length, and where its symbols start in `symbols`.
    first: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    /// Symbols ordered by (length, value): the canonical order.
    symbols: [u16; 257],
}

const CODE: Code = canonical();

const fn canonical() -> Code {
    let mut code = Code {
        limit: [0; MAX_LEN + 1],
        first: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut next: u32 = 0;
    let mut n = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        code.first[len] = next;
        code.offset[len] = n as u16;
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                code.symbols[n] = sym as u16;
                n += 1;
                next += 1;
            }
            sym += 1;
        }
        code.limit[len] = (next as u64) << (32 - len);
        next <<= 1;
        len += 1;
    }
    code
}

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanDecoderError> {
    out.reserve(src.len() * 8 / 5);
    // Unread bits, left-justified in `acc`; `bits` of them are valid.
    let mut acc: u64 = 0;
    let mut bits: usize = 0;
    let mut next = src.iter();
    loop {
        while bits <= 56 {
            match next.next() {
                Some(&byte) => {
                    acc |= (byte as u64) << (56 - bits);
                    bits += 8;
                }
                None => break,
            }
        }
        if bits == 0 {
            return Ok(());
        }
        let peek = acc >> 32;
        let mut len = MIN_LEN;
        while len < MAX_LEN && peek >= CODE.limit[len] {
            len += 1;
        }
        if len > bits {
            // What is left is padding: fewer than 8 bits, all ones (the start of EOS).
            if bits > 7 {
                return Err(HuffmanDecoderError::PaddingTooLarge);
            }
            let ones = !0u64 << (64 - bits);
            return if acc & ones == ones {
                Ok(())
            } else {
                Err(HuffmanDecoderError::InvalidPadding)
            };
        }
        let index =
            CODE.offset[len] as usize + (peek >> (32 - len)) as usize - CODE.first[len] as usize;
        let symbol = CODE.symbols[index];
        if symbol == EOS {
            return Err(HuffmanDecoderError::EOSInString);
        }
        out.push(symbol as u8);
        acc <<= len;
        bits -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::huffman::HuffmanDecoder;

    /// The canonical code of `symbol`: (code, length).
    fn code_of(symbol: usize) -> (u32, usize) {
        let len = LENGTHS[symbol] as usize;
        let rank = CODE
            .symbols
            .iter()
            .position(|&s| s as usize == symbol)
            .unwrap();
        (
            CODE.first[len] + (rank - CODE.offset[len] as usize) as u32,
            len,
        )
    }

    fn encode(plain: &[u8]) -> Vec<u8> {
        let (mut acc, mut bits, mut out) = (0u64, 0usize, Vec::new());
        for &b in plain {
            let (code, len) = code_of(b as usize);
            acc = (acc << len) | code as u64;
            bits += len;
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
        }
        out
    }

    fn ours(src: &[u8]) -> Result<Vec<u8>, HuffmanDecoderError> {
        let mut out = Vec::new();
        decode(src, &mut out).map(|()| out)
    }

    #[test]
    fn rfc7541_appendix_c4_strings() {
        for (hex, plain) in [
            ("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com"),
            ("a8eb10649cbf", "no-cache"),
            ("25a849e95ba97d7f", "custom-key"),
            ("25a849e95bb8e8b4bf", "custom-value"),
        ] {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(ours(&bytes).unwrap(), plain.as_bytes());
            assert_eq!(encode(plain.as_bytes()), bytes);
        }
    }

    #[test]
    fn the_code_is_the_one_loona_hpack_decodes() {
        // Every symbol alone, and every symbol between two others, through both decoders.
        for symbol in 0..=255u8 {
            for plain in [vec![symbol], vec![b'a', symbol, b'~']] {
                let coded = encode(&plain);
                assert_eq!(ours(&coded).unwrap(), plain);
                assert_eq!(HuffmanDecoder::new().decode(&coded).unwrap(), plain);
            }
        }
    }

    #[test]
    fn agrees_with_loona_hpack_on_arbitrary_bytes() {
        // A fixed pseudo-random corpus: valid codes, bad padding, EOS, long padding.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..20_000 {
            let len = n % 24;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Bias towards ones so that long codes, EOS and padding come up.
                    (x as u8) | if n % 3 == 0 { 0xf0 } else { 0 }
                })
                .collect();
            assert_eq!(
                ours(&bytes),
                HuffmanDecoder::new().decode(&bytes),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn padding_rules() {
        let eos_prefix = [0xff];
        assert_eq!(ours(&eos_prefix), Err(HuffmanDecoderError::PaddingTooLarge));
        let zero_padding = [0x00]; // '0' (00000) then 000: padding not ones
        assert_eq!(
            ours(&zero_padding),
            Err(HuffmanDecoderError::InvalidPadding)
        );
        let eos = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(ours(&eos), Err(HuffmanDecoderError::EOSInString));
        assert_eq!(ours(&[]), Ok(Vec::new()));
    }
}
