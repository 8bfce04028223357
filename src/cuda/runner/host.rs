//! Facts about the machine around the GPU: the SM clock from nvidia-smi, and whether a shape's
//! tensors fit in device and host memory.

use super::error::{Result, RunnerError};
use crate::cuda::driver;
use crate::cuda::spec::Resolved;

/// The SM clock now, from nvidia-smi, if it is there.
pub fn sm_clock_mhz(pci_bus_id: &str) -> Option<u64> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=clocks.sm",
            "--format=csv,noheader,nounits",
            "-i",
            pci_bus_id,
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Refuses a shape whose tensors cannot fit, with a message, before anything is allocated: on
/// the device (tensors, f32 reference twins, the L2 flush buffer) and on the host (inputs as
/// drawn and encoded, outputs downloaded and decoded for the comparison).
pub fn check_memory(resolved: &Resolved, l2_bytes: usize) -> Result<()> {
    let gib = |bytes: u128| bytes as f64 / (1u64 << 30) as f64;
    let mut device: u128 = 2 * l2_bytes.max(4 << 20) as u128;
    let mut host: u128 = 0;
    for tensor in &resolved.tensors {
        let n = tensor.numel as u128;
        device += tensor.bytes() as u128 + 2 * driver::GUARD_BYTES as u128;
        if tensor.output {
            device += n * 4;
            // Downloaded bytes + f32 twin + two f64 decodes.
            host += tensor.bytes() as u128 + n * 4 + n * 16;
        } else if !tensor.scratch {
            // f32 draw + encoded copy kept for the unchanged-input check + one download.
            host += n * 4 + 2 * tensor.bytes() as u128;
        }
    }
    if let Ok(free) = driver::free_memory() {
        if device > free as u128 {
            return Err(RunnerError::DeviceMemory {
                need_gib: gib(device),
                free_gib: gib(free as u128),
            });
        }
    }
    if let Some(available) = host_memory_available() {
        if host > available {
            return Err(RunnerError::HostMemory {
                need_gib: gib(host),
                available_gib: gib(available),
            });
        }
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo, in bytes.
fn host_memory_available() -> Option<u128> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
