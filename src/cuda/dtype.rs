//! Element types of CUDA tensors, their host encodings, and the sentinel that marks an element
//! no kernel has written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    F32,
    F16,
    Bf16,
    /// OCP FP8 E4M3 ("e4m3fn", CUDA's `__nv_fp8_e4m3`): max 448, no infinities.
    Fp8E4m3,
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::Bf16 => 2,
            DType::Fp8E4m3 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::Fp8E4m3 => "fp8_e4m3",
            DType::I32 => "i32",
        }
    }

    /// Encodes values (rounded to nearest, saturating for fp8) as the device will read them.
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(values.len() * self.size());
        for &value in values {
            match self {
                DType::F32 => bytes.extend_from_slice(&value.to_le_bytes()),
                DType::F16 => bytes.extend_from_slice(&half::f16::from_f32(value).to_le_bytes()),
                DType::Bf16 => bytes.extend_from_slice(&half::bf16::from_f32(value).to_le_bytes()),
                DType::Fp8E4m3 => bytes.push(float8::F8E4M3::from_f32(value).to_bits()),
                DType::I32 => bytes.extend_from_slice(&(value.round() as i32).to_le_bytes()),
            }
        }
        bytes
    }

    /// Decodes device bytes to f64 for comparison.
    pub fn decode(self, bytes: &[u8]) -> Vec<f64> {
        match self {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|b| f64::from(half::f16::from_le_bytes([b[0], b[1]]).to_f32()))
                .collect(),
            DType::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| f64::from(half::bf16::from_le_bytes([b[0], b[1]]).to_f32()))
                .collect(),
            DType::Fp8E4m3 => bytes
                .iter()
                .map(|b| f64::from(float8::F8E4M3::from_bits(*b).to_f32()))
                .collect(),
            DType::I32 => bytes
                .chunks_exact(4)
                .map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
        }
    }

    /// One element that no correct kernel leaves behind: NaN for floating types, and for i32
    /// `i32::MIN`, which the comparison treats as unwritten.
    pub fn sentinel(self) -> Vec<u8> {
        match self {
            DType::F32 => f32::NAN.to_le_bytes().to_vec(),
            DType::F16 => half::f16::NAN.to_le_bytes().to_vec(),
            DType::Bf16 => half::bf16::NAN.to_le_bytes().to_vec(),
            DType::Fp8E4m3 => vec![0x7F],
            DType::I32 => i32::MIN.to_le_bytes().to_vec(),
        }
    }

    /// Whether a decoded element is the unwritten sentinel.
    pub fn is_sentinel(self, value: f64) -> bool {
        match self {
            DType::I32 => value == f64::from(i32::MIN),
            _ => value.is_nan(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_representable_values() {
        let values = [0.0f32, 1.0, -2.5, 448.0, 0.125];
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::Fp8E4m3] {
            let decoded = dtype.decode(&dtype.encode(&values));
            let expected: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
            assert_eq!(decoded, expected, "{}", dtype.name());
        }
        assert_eq!(
            DType::I32.decode(&DType::I32.encode(&[3.0, -7.0])),
            [3.0, -7.0]
        );
    }

    #[test]
    fn fp8_is_e4m3fn_and_saturates() {
        assert_eq!(
            DType::Fp8E4m3.encode(&[1e9, -1e9, 448.0]),
            [0x7E, 0xFE, 0x7E]
        );
        assert!(DType::Fp8E4m3.decode(&[0x7F])[0].is_nan());
        assert_eq!(DType::Fp8E4m3.decode(&[0x78]), [256.0]);
    }

    #[test]
    fn sentinels_are_recognised() {
        for dtype in [
            DType::F32,
            DType::F16,
            DType::Bf16,
            DType::Fp8E4m3,
            DType::I32,
        ] {
            let sentinel = dtype.sentinel();
            assert_eq!(sentinel.len(), dtype.size());
            assert!(
                dtype.is_sentinel(dtype.decode(&sentinel)[0]),
                "{}",
                dtype.name()
            );
        }
    }
}
