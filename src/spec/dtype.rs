//! Element types of CUDA tensors, their host encodings, and the sentinel that marks an element
//! no kernel has written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

    /// One element that no kernel's arithmetic produces: a signalling NaN with a payload for
    /// the floating types (arithmetic yields quiet NaNs), `i32::MIN` for i32. FP8 E4M3 has a
    /// single NaN, so there a NaN the kernel wrote and an unwritten element look alike.
    pub fn sentinel(self) -> Vec<u8> {
        match self {
            DType::F32 => 0x7F8D_EAD1u32.to_le_bytes().to_vec(),
            DType::F16 => 0x7D0Du16.to_le_bytes().to_vec(),
            DType::Bf16 => 0x7F8Du16.to_le_bytes().to_vec(),
            DType::Fp8E4m3 => vec![0x7F],
            DType::I32 => i32::MIN.to_le_bytes().to_vec(),
        }
    }
}

impl DType {
    /// What the guard bands around a tensor hold: a quiet NaN for the floating types, so a
    /// kernel that reads past either end of an input computes NaN and fails the check instead
    /// of reading a harmless small number; `i32::MIN + 1` for i32, which wrecks any index or sum
    /// it enters. Distinct from [`DType::sentinel`] except for FP8 E4M3, whose only NaN serves
    /// as both, so a value read past the end and copied out is not taken for an unwritten one.
    pub fn guard(self) -> Vec<u8> {
        match self {
            DType::F32 => 0x7FC0_A5A5u32.to_le_bytes().to_vec(),
            DType::F16 => 0x7EA5u16.to_le_bytes().to_vec(),
            DType::Bf16 => 0x7FE5u16.to_le_bytes().to_vec(),
            DType::Fp8E4m3 => vec![0x7F],
            DType::I32 => (i32::MIN + 1).to_le_bytes().to_vec(),
        }
    }

    /// The type of the buffer the reference writes for an output of this type: f32, except for
    /// i32 outputs, which are compared exactly (f32 holds integers exactly only up to 2^24).
    pub fn reference_type(self) -> DType {
        match self {
            DType::I32 => DType::I32,
            _ => DType::F32,
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
    fn sentinels_are_nan_but_not_what_arithmetic_writes() {
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::Fp8E4m3] {
            let sentinel = dtype.sentinel();
            assert_eq!(sentinel.len(), dtype.size());
            assert!(dtype.decode(&sentinel)[0].is_nan(), "{}", dtype.name());
        }
        // The quiet NaNs a kernel writes differ from the floating sentinels bit for bit.
        assert_ne!(DType::F32.sentinel(), f32::NAN.to_le_bytes());
        assert_ne!(DType::F32.sentinel(), 0x7FFF_FFFFu32.to_le_bytes());
        assert_ne!(DType::F16.sentinel(), half::f16::NAN.to_le_bytes());
        assert_ne!(DType::Bf16.sentinel(), half::bf16::NAN.to_le_bytes());
        assert_eq!(
            DType::I32.decode(&DType::I32.sentinel()),
            [f64::from(i32::MIN)]
        );
    }

    #[test]
    fn floating_guards_read_as_nan() {
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::Fp8E4m3] {
            let guard = dtype.guard();
            assert_eq!(guard.len(), dtype.size());
            assert!(dtype.decode(&guard)[0].is_nan(), "{}", dtype.name());
        }
        // Quiet NaNs: arithmetic on them yields NaN without trapping.
        assert!(f32::from_le_bytes([0xA5, 0xA5, 0xC0, 0x7F]).is_nan());
        assert_eq!(
            DType::I32.decode(&DType::I32.guard()),
            [f64::from(i32::MIN + 1)]
        );
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
            assert_ne!(dtype.guard(), dtype.sentinel(), "{}", dtype.name());
        }
    }
}
