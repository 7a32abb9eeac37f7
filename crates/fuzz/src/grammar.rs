//! Request generation from the contracts themselves: the descriptor set compiled from `proto/`
//! says which fields each request has and of which type, and values come from a dictionary of
//! the protocol file's own words plus boundary values, so generated requests get past decoding
//! and deep into each service's conversion and checks. A share of inputs are then mutated at
//! the byte level (or are plain random bytes) to exercise the decoder itself.

use std::collections::HashMap;

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;

/// One unary RPC: its path and request type.
#[derive(Debug, Clone)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    /// Fully qualified request type, `.package.Message`.
    pub input: String,
}

/// The contracts' messages, enums and unary methods.
pub struct Grammar {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, Vec<i32>>,
    methods: Vec<Method>,
    words: Vec<String>,
}

fn collect(prefix: &str, message: &DescriptorProto, grammar: &mut Grammar) {
    let name = format!("{prefix}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, grammar);
    }
    for e in &message.enum_type {
        grammar.enums.insert(
            format!("{name}.{}", e.name()),
            e.value.iter().map(|v| v.number()).collect(),
        );
    }
    grammar.messages.insert(name, message.clone());
}

impl Grammar {
    /// The grammar of the compiled contracts, with words from the bundled protocol definition.
    pub fn load() -> anyhow::Result<Grammar> {
        let set = FileDescriptorSet::decode(trialops_proto::FILE_DESCRIPTOR_SET)?;
        let mut grammar = Grammar {
            messages: HashMap::new(),
            enums: HashMap::new(),
            methods: Vec::new(),
            words: words(),
        };
        for file in &set.file {
            let prefix = if file.package().is_empty() {
                String::new()
            } else {
                format!(".{}", file.package())
            };
            for message in &file.message_type {
                collect(&prefix, message, &mut grammar);
            }
            for e in &file.enum_type {
                grammar.enums.insert(
                    format!("{prefix}.{}", e.name()),
                    e.value.iter().map(|v| v.number()).collect(),
                );
            }
            for service in &file.service {
                for method in &service.method {
                    if method.client_streaming() || method.server_streaming() {
                        continue;
                    }
                    grammar.methods.push(Method {
                        path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        input: method.input_type().to_owned(),
                    });
                }
            }
        }
        Ok(grammar)
    }

    /// The unary methods whose path starts with `prefix`.
    pub fn methods(&self, prefix: &str) -> Vec<Method> {
        self.methods
            .iter()
            .filter(|m| m.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// One input for `method`: mostly well-typed requests, some mutated, some random bytes.
    pub fn input(&self, method: &Method, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let roll = rng.next_u32() % 100;
        if roll < 5 {
            let mut bytes = vec![0u8; (rng.next_u32() % 64) as usize];
            rng.fill_bytes(&mut bytes);
            return bytes;
        }
        let mut out = Vec::new();
        self.message(&method.input, 0, rng, &mut out);
        if roll < 15 && !out.is_empty() {
            mutate(&mut out, rng);
        }
        out
    }

    fn message(&self, type_name: &str, depth: usize, rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
        let Some(message) = self.messages.get(type_name) else {
            return;
        };
        if depth > 4 {
            return;
        }
        for field in &message.field {
            // Usually present; repeated fields get up to three values.
            if rng.next_u32() % 10 < 2 {
                continue;
            }
            let count = if field.label() == prost_types::field_descriptor_proto::Label::Repeated {
                rng.next_u32() % 4
            } else {
                1
            };
            let tag = u32::try_from(field.number()).unwrap_or(1);
            for _ in 0..count {
                self.value(field, tag, depth, rng, out);
            }
        }
    }

    fn value(
        &self,
        field: &prost_types::FieldDescriptorProto,
        tag: u32,
        depth: usize,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<u8>,
    ) {
        match field.r#type() {
            Type::String => {
                let s = self.string(rng);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
            Type::Bytes => {
                let mut b = vec![0u8; (rng.next_u32() % 16) as usize];
                rng.fill_bytes(&mut b);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(b.len() as u64, out);
                out.extend_from_slice(&b);
            }
            Type::Message => {
                let mut nested = Vec::new();
                self.message(field.type_name(), depth + 1, rng, &mut nested);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(nested.len() as u64, out);
                out.extend_from_slice(&nested);
            }
            Type::Enum => {
                let values = self.enums.get(field.type_name()).cloned().unwrap_or_default();
                let v = if !values.is_empty() && rng.next_u32() % 10 < 8 {
                    values[(rng.next_u32() as usize) % values.len()]
                } else {
                    integer(rng) as i32
                };
                encode_key(tag, WireType::Varint, out);
                encode_varint(i64::from(v) as u64, out);
            }
            Type::Bool => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(u64::from(rng.next_u32() % 2), out);
            }
            Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(integer(rng) as u64, out);
            }
            Type::Sint32 | Type::Sint64 => {
                let v = integer(rng);
                encode_key(tag, WireType::Varint, out);
                encode_varint(((v << 1) ^ (v >> 63)) as u64, out);
            }
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                let v = [0.0f64, -1.0, 1.5, f64::NAN, f64::INFINITY, 1e308, -0.0][(rng.next_u32() % 7) as usize];
                encode_key(tag, WireType::SixtyFourBit, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                encode_key(tag, WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&rng.next_u32().to_le_bytes());
            }
            Type::Group => {}
        }
    }

    fn string(&self, rng: &mut ChaCha8Rng) -> String {
        match rng.next_u32() % 20 {
            0..=9 => self.words[(rng.next_u32() as usize) % self.words.len()].clone(),
            10..=12 => uuid::Uuid::new_v4().to_string(),
            13 => "00000000-0000-4000-8000-000000000001".to_owned(),
            14 => format!("ANBL1221-{:04}", rng.next_u32() % 4),
            15 => format!("{}", integer(rng)),
            16 => format!("{}.{}", rng.next_u32() % 500, rng.next_u32() % 1000),
            17 => "x".repeat((rng.next_u32() % 400) as usize),
            18 => "é漢字\u{0}\u{202e}".to_owned(),
            _ => String::new(),
        }
    }
}

fn integer(rng: &mut ChaCha8Rng) -> i64 {
    match rng.next_u32() % 10 {
        0 => 0,
        1 => -1,
        2 => i64::from(i32::MAX),
        3 => i64::from(i32::MIN),
        4 => i64::MAX,
        5 => 2026,
        6 => i64::from(rng.next_u32() % 13),
        7 => i64::from(rng.next_u32() % 32),
        8 => i64::from(rng.next_u32() % 1000),
        _ => rng.next_u64() as i64,
    }
}

/// Byte-level mutation: flip, insert, delete or truncate.
fn mutate(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let at = (rng.next_u32() as usize) % bytes.len();
    match rng.next_u32() % 4 {
        0 => bytes[at] ^= 1 << (rng.next_u32() % 8),
        1 => bytes.insert(at, rng.next_u32() as u8),
        2 => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
}

/// The protocol definition's quoted words (trial, arm, stratum, variable and agent codes) and
/// the sites the fuzzer registers, plus decimal and date-like edge cases.
fn words() -> Vec<String> {
    let mut words: Vec<String> = trialops_domain::protocol::ANBL1221_TOML
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.len() <= 40 && !w.contains('\n'))
        .map(str::to_owned)
        .collect();
    words.sort();
    words.dedup();
    for extra in [
        "COG-101",
        "COG-202",
        "SCR-1",
        "SCR-2",
        "0",
        "-0",
        "1e3",
        "NaN",
        "0.000000000000000000001",
        "99999999999999999999999999999",
        "12.5",
        "-3.2",
        "2026-02-30",
        " ",
        "A",
        "B",
    ] {
        words.push(extra.to_owned());
    }
    words
}
