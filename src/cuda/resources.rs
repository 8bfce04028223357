//! Static resources of compiled kernels for gate 4: the driver's view (registers, local and
//! shared memory, occupancy), ptxas's report (spill bytes) and the SASS (tensor-core
//! instructions). None of it runs a kernel.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;

use super::driver::{self, DeviceInfo, Function};
use super::spec::ResolvedLaunch;

pub use crate::measure::Resources;

/// Opcodes of tensor-core instructions: mma.sync (HMMA, IMMA, DMMA, BMMA), warpgroup MMA
/// (HGMMA, QGMMA, IGMMA, BGMMA) and the Blackwell UTC*MMA family.
const TENSOR_OPCODES: [&str; 8] = [
    "HMMA", "IMMA", "DMMA", "BMMA", "HGMMA", "QGMMA", "IGMMA", "BGMMA",
];

/// One entry per distinct entry point of `launches`.
pub fn collect(
    launches: &[ResolvedLaunch],
    functions: &[Function],
    device: &DeviceInfo,
    ptxas_log: &str,
    sass: Option<&HashMap<String, IndexMap<String, u64>>>,
) -> driver::Result<Vec<Resources>> {
    let spills = spill_bytes(ptxas_log);
    let warp_slots = (device.max_threads_per_sm / 32).max(1) as f64;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (launch, function) in launches.iter().zip(functions) {
        if seen.contains(&launch.entry) {
            continue;
        }
        seen.push(launch.entry.clone());
        let driver = function.resources()?;
        let threads: u32 = launch.block.iter().product();
        let blocks = function.blocks_per_sm(threads, launch.shared_bytes)?.max(0) as u32;
        let warps = f64::from(blocks) * f64::from(threads.div_ceil(32));
        out.push(Resources {
            entry: launch.entry.clone(),
            registers: driver.registers.max(0) as u32,
            spill_bytes: spills.get(&launch.entry).copied(),
            local_bytes: driver.local_bytes.max(0) as u64,
            static_shared_bytes: driver.static_shared_bytes.max(0) as u64,
            dynamic_shared_bytes: u64::from(launch.shared_bytes),
            threads_per_block: threads,
            blocks_per_sm: blocks,
            occupancy_pct: (warps / warp_slots * 100.0).min(100.0),
            tensor_instructions: sass.map(|s| s.get(&launch.entry).cloned().unwrap_or_default()),
        });
    }
    Ok(out)
}

/// Spill stores + loads per function from ptxas's `-v` report:
///
/// ```text
/// ptxas info    : Compiling entry function 'k' for 'sm_90a'
/// ptxas info    : Function properties for k
///     48 bytes stack frame, 40 bytes spill stores, 40 bytes spill loads
/// ```
pub fn spill_bytes(log: &str) -> HashMap<String, u64> {
    let mut spills = HashMap::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if let Some(rest) = line.split("Function properties for ").nth(1) {
            current = Some(rest.trim().to_string());
            continue;
        }
        let Some(function) = &current else { continue };
        if line.contains("spill stores") {
            let number_before = |what: &str| -> Option<u64> {
                let head = line.split(what).next()?;
                head.rsplit(|c: char| !c.is_ascii_digit())
                    .find(|t| !t.is_empty())?
                    .parse()
                    .ok()
            };
            let stores = number_before(" bytes spill stores").unwrap_or(0);
            let loads = number_before(" bytes spill loads").unwrap_or(0);
            spills.insert(function.clone(), stores + loads);
            current = None;
        }
    }
    spills
}

/// Tensor-core instruction counts per function, from `cuobjdump -sass` of `cubin`; `None` when
/// cuobjdump is not installed or fails.
pub fn disassemble(cubin: &Path) -> Option<HashMap<String, IndexMap<String, u64>>> {
    let cuobjdump = super::tools::find("cuobjdump", None)?;
    let output = std::process::Command::new(cuobjdump)
        .arg("-sass")
        .arg(cubin)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(count_tensor_instructions(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// Counts tensor-core opcodes under each `Function : name` header of a SASS listing.
pub fn count_tensor_instructions(sass: &str) -> HashMap<String, IndexMap<String, u64>> {
    let mut counts: HashMap<String, IndexMap<String, u64>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in sass.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("Function : ") {
            current = Some(name.trim().to_string());
            counts.entry(name.trim().to_string()).or_default();
            continue;
        }
        let Some(function) = &current else { continue };
        // `/*0a10*/   HMMA.16816.F32 R4, R8, R12, R4 ;` (optionally predicated: `@P0 HMMA...`)
        let Some(code) = trimmed.strip_prefix("/*").and_then(|t| t.split_once("*/")) else {
            continue;
        };
        let mut words = code.1.split_whitespace();
        let Some(mut word) = words.next() else {
            continue;
        };
        if word.starts_with('@') {
            let Some(next) = words.next() else { continue };
            word = next;
        }
        let opcode = word.split('.').next().unwrap_or(word);
        let tensor = TENSOR_OPCODES.contains(&opcode)
            || (opcode.starts_with("UTC") && opcode.ends_with("MMA"));
        if tensor {
            if let Some(map) = counts.get_mut(function) {
                *map.entry(opcode.to_string()).or_default() += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptxas_spills_are_read_per_function() {
        let log = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'fast' for 'sm_90a'
ptxas info    : Function properties for fast
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 180 registers, used 1 barriers, 588 bytes cmem[0]
ptxas info    : Compiling entry function 'tight' for 'sm_90a'
ptxas info    : Function properties for tight
    48 bytes stack frame, 40 bytes spill stores, 44 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 588 bytes cmem[0]
";
        let spills = spill_bytes(log);
        assert_eq!(spills["fast"], 0);
        assert_eq!(spills["tight"], 84);
        assert!(spill_bytes("").is_empty());
    }

    #[test]
    fn tensor_core_opcodes_are_counted_per_function() {
        let sass = "
\tcode for sm_90a
\t\tFunction : with_mma
\t.headerflags\t@\"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)\"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                   /* 0x00000a00ff017b82 */
        /*0a10*/                   HMMA.16816.F32 R4, R8, R12, R4 ;         /* 0x0000000c0804723c */
        /*0a20*/              @P0  HMMA.16816.F32 R4, R8, R14, R4 ;
        /*0a30*/                   QGMMA.64x64x32.F32.E4M3.E4M3 R24, gdesc[UR4], R24 ;
        /*0a40*/                   HGMMA.64x128x16.F32 R88, R20, gdesc[UR8], R88 ;
        /*0a50*/                   FFMA R1, R2, R3, R4 ;
\t\tFunction : without_mma
        /*0000*/                   FFMA R1, R2, R3, R4 ;
        /*0010*/                   EXIT ;
";
        let counts = count_tensor_instructions(sass);
        let with = &counts["with_mma"];
        assert_eq!(with["HMMA"], 2);
        assert_eq!(with["QGMMA"], 1);
        assert_eq!(with["HGMMA"], 1);
        assert!(counts["without_mma"].is_empty());
    }
}
