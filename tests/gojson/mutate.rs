//! Beyond the hand-written corpus: the real specs with keys respelt the ways Go folds (letter
//! case, `ſ` for `s`, `K` for `k`) and members repeated later in the same object (same or
//! folded spelling; the same, an emptied or a `null` value), at every depth. Seeded, so a
//! failure is reproducible; the property is the corpus's: refused, or the same to Go.

use serde_json::{json, Value};

use portcullis::convert::strict::{self, Shape};

use super::{fixture, go_reads, FIXTURES};

/// xorshift64*: deterministic, and no dependency for it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// `key` spelt another way Go may fold to the same field name.
fn respell(key: &str, rng: &mut Rng) -> String {
    key.chars()
        .map(|c| match rng.below(6) {
            0 if c.eq_ignore_ascii_case(&'s') => '\u{17F}',
            1 if c.eq_ignore_ascii_case(&'k') => '\u{212A}',
            2 => c.to_ascii_uppercase(),
            3 => c.to_ascii_lowercase(),
            _ => c,
        })
        .collect()
}

/// `v` as JSON text, respelling and repeating members of its objects at random.
fn emit(v: &Value, rng: &mut Rng, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut members: Vec<(String, Value)> =
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (k, _) in members.iter_mut() {
                if rng.percent(10) {
                    *k = respell(k, rng);
                }
            }
            for i in 0..members.len() {
                if rng.percent(6) {
                    let (k, v) = members[i].clone();
                    let k = if rng.percent(30) { k } else { respell(&k, rng) };
                    let v = match rng.below(4) {
                        0 => Value::Null,
                        1 if v.is_object() => json!({}),
                        1 if v.is_array() => json!([]),
                        _ => v,
                    };
                    members.push((k, v));
                }
            }
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                emit(v, rng, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(v, rng, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[test]
fn mutated_real_specs_mean_the_same_to_go_or_are_refused() {
    let mut rng = Rng(0x5EED_C0FF_EE00_0001);
    let mut docs: Vec<(Shape, Vec<u8>)> = Vec::new();
    for name in FIXTURES {
        let spec: Value = serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap();
        for _ in 0..60 {
            let mut text = String::new();
            emit(&spec, &mut rng, &mut text);
            docs.push((Shape::Spec, text.into_bytes()));
            let mut text = String::new();
            emit(&spec["process"], &mut rng, &mut text);
            docs.push((Shape::Process, text.into_bytes()));
        }
    }
    let mut batch = Vec::new();
    let mut accepted = Vec::new();
    for (i, (shape, bytes)) in docs.iter().enumerate() {
        if let Ok(v) = strict::parse(bytes, *shape) {
            accepted.push(i);
            batch.push((*shape, bytes.clone()));
            batch.push((*shape, serde_json::to_vec(&v).unwrap()));
        }
    }
    let answers = go_reads(&batch);
    for (i, pair) in accepted.iter().zip(answers.chunks(2)) {
        let same = match (&pair[0], &pair[1]) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        assert!(
            same,
            "document {i} ({:?}):\n{}\nGo reads the bytes as {:?}\nbut what we judge as {:?}",
            docs[*i].0,
            String::from_utf8_lossy(&docs[*i].1),
            pair[0],
            pair[1]
        );
    }
    // Both outcomes occur, so the property was tested on both sides.
    let refused = docs.len() - accepted.len();
    assert!(
        refused > docs.len() / 4 && accepted.len() > docs.len() / 10,
        "{refused} refused, {} accepted",
        accepted.len()
    );
}
