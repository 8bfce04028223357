//! `gatekeeper doctor`: what a runner's owner checks before trusting its timings.

use std::process::Command;

use crate::cuda::{compile, driver};
use crate::exit;
use crate::outln;

/// One line per check; exit 0 when CUDA kernels can run here, 2 when they cannot.
pub fn run() -> u8 {
    let mut usable = true;
    let line = |ok: bool, what: &str, detail: String| {
        outln!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    };

    // The GPU the runner uses (device 0), to pick its line out of nvidia-smi on multi-GPU hosts.
    let mut bus_id: Option<String> = None;
    if !driver::driver_present() {
        line(
            false,
            "CUDA driver",
            "libcuda.so not found: no NVIDIA driver on this machine".into(),
        );
        usable = false;
    } else {
        match driver::Gpu::open() {
            Ok(gpu) => {
                let info = &gpu.info;
                line(
                    true,
                    "CUDA driver",
                    format!(
                        "{}.{} (CUDA driver API)",
                        info.driver_version / 1000,
                        (info.driver_version % 1000) / 10
                    ),
                );
                bus_id = Some(info.pci_bus_id.clone());
                line(
                    true,
                    "GPU",
                    format!(
                        "{} (sm_{}{}, {} SMs, {} MiB L2, PCI {})",
                        info.name,
                        info.compute_capability.0,
                        info.compute_capability.1,
                        info.multiprocessors,
                        info.l2_bytes >> 20,
                        info.pci_bus_id
                    ),
                );
            }
            Err(why) => {
                line(false, "GPU", why);
                usable = false;
            }
        }
    }
    if driver::nvrtc_present() {
        line(true, "NVRTC", "libnvrtc.so found".into());
    } else {
        line(
            false,
            "NVRTC",
            "libnvrtc.so not found: install the CUDA toolkit or add its lib64 to LD_LIBRARY_PATH"
                .into(),
        );
        usable = false;
    }
    match compile::cuda_include_dir() {
        Some(dir) => line(true, "CUDA headers", dir.display().to_string()),
        None => line(
            false,
            "CUDA headers",
            "no include folder with cuda_fp16.h under $CUDA_HOME, $CUDA_PATH or /usr/local/cuda"
                .into(),
        ),
    }
    match first_line("ncu", &["--version"]) {
        Some(version) => line(true, "Nsight Compute", version),
        None => line(
            false,
            "Nsight Compute",
            "ncu not on PATH (needed only for profiling)".into(),
        ),
    }
    let query =
        "name,clocks.sm,clocks.max.sm,clocks_event_reasons.active,temperature.gpu,power.draw";
    let mut args = vec![
        format!("--query-gpu={query}"),
        "--format=csv,noheader".to_string(),
    ];
    if let Some(id) = &bus_id {
        args.extend(["-i".to_string(), id.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match first_line("nvidia-smi", &args) {
        Some(state) => {
            // Active clock-event reasons other than idle (0x1) mean the clocks are being held
            // down: timings taken now are not comparable with a baseline.
            let throttled = state
                .split(',')
                .nth(3)
                .and_then(|r| u64::from_str_radix(r.trim().trim_start_matches("0x"), 16).ok())
                .is_some_and(|reasons| reasons & !0x1 != 0);
            line(
                !throttled,
                "clocks",
                format!("{state} (name, SM MHz, max SM MHz, clock-event reasons, °C, W)"),
            );
        }
        None => line(false, "clocks", "nvidia-smi not available".into()),
    }
    match Command::new("nvidia-smi")
        .args([
            "--query-compute-apps=gpu_bus_id,pid,process_name,used_memory",
            "--format=csv,noheader",
        ])
        .output()
    {
        Ok(out) if out.status.success() => {
            let apps = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| {
                    let app_bus = l.split(',').next().unwrap_or("");
                    bus_id.as_deref().is_none_or(|id| same_bus(app_bus, id))
                })
                .collect::<Vec<_>>()
                .join("; ");
            if apps.is_empty() {
                line(true, "other processes", "none on this GPU".into());
            } else {
                line(
                    false,
                    "other processes",
                    format!("sharing the GPU skews timings: {apps}"),
                );
            }
        }
        _ => line(false, "other processes", "nvidia-smi not available".into()),
    }
    if usable {
        exit::PASS
    } else {
        outln!("CUDA kernels cannot run on this machine.");
        exit::USAGE_OR_ENVIRONMENT
    }
}

/// Whether two PCI bus ids name one device: nvidia-smi writes an 8-digit domain
/// (`00000000:18:00.0`), CUDA a 4-digit one (`0000:18:00.0`).
fn same_bus(a: &str, b: &str) -> bool {
    let bus = |id: &str| {
        let id = id.trim().to_ascii_lowercase();
        match id.split_once(':') {
            Some((domain, rest)) => {
                format!("{:x}:{rest}", u64::from_str_radix(domain, 16).unwrap_or(0))
            }
            None => id,
        }
    };
    bus(a) == bus(b)
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bus_ids_compare_across_domain_widths() {
        assert!(super::same_bus("00000000:18:00.0", "0000:18:00.0"));
        assert!(!super::same_bus("00000000:19:00.0", "0000:18:00.0"));
    }
}
