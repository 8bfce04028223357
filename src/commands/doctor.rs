//! `gatekeeper doctor`: what a runner's owner checks before trusting its timings.

use std::process::Command;

use crate::cuda::{compile, driver};
use crate::exit;
use crate::outln;

/// One line per check; exit 0 when CUDA kernels can run here, 2 when they cannot.
pub fn run() -> u8 {
    let (gpu_ok, bus_id) = driver_and_gpu();
    let nvrtc_ok = nvrtc();
    headers();
    nsight_compute();
    // The GPU the runner uses (device 0), to pick its line out of nvidia-smi on multi-GPU hosts.
    clocks(bus_id.as_deref());
    other_processes(bus_id.as_deref());
    if gpu_ok && nvrtc_ok {
        exit::PASS
    } else {
        outln!("CUDA kernels cannot run on this machine.");
        exit::USAGE_OR_ENVIRONMENT
    }
}

fn line(ok: bool, what: &str, detail: String) {
    outln!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
}

/// The driver and the runner's GPU (device 0): whether it opens, and its PCI bus id.
fn driver_and_gpu() -> (bool, Option<String>) {
    if !driver::driver_present() {
        line(
            false,
            "CUDA driver",
            "libcuda.so not found: no NVIDIA driver on this machine".into(),
        );
        return (false, None);
    }
    match driver::Gpu::open() {
        Ok(gpu) => {
            let info = &gpu.info;
            line(
                true,
                "CUDA driver",
                format!("{} (CUDA driver API)", info.driver_release()),
            );
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
            (true, Some(info.pci_bus_id.clone()))
        }
        Err(why) => {
            line(false, "GPU", why.to_string());
            (false, None)
        }
    }
}

fn nvrtc() -> bool {
    let found = driver::nvrtc_present();
    if found {
        line(true, "NVRTC", "libnvrtc.so found".into());
    } else {
        line(
            false,
            "NVRTC",
            "libnvrtc.so not found: install the CUDA toolkit or add its lib64 to LD_LIBRARY_PATH"
                .into(),
        );
    }
    found
}

fn headers() {
    match compile::cuda_include_dir() {
        Some(dir) => line(true, "CUDA headers", dir.display().to_string()),
        None => line(
            false,
            "CUDA headers",
            "no include folder with cuda_fp16.h under $CUDA_HOME, $CUDA_PATH or /usr/local/cuda"
                .into(),
        ),
    }
}

fn nsight_compute() {
    match first_line("ncu", &["--version"]) {
        Some(version) => line(true, "Nsight Compute", version),
        None => line(
            false,
            "Nsight Compute",
            "ncu not on PATH (needed only for profiling)".into(),
        ),
    }
}

/// The GPU's clocks, temperature and power, and whether anything holds the clocks down.
fn clocks(bus_id: Option<&str>) {
    let query =
        "name,clocks.sm,clocks.max.sm,clocks_event_reasons.active,temperature.gpu,power.draw";
    let mut args = vec![
        format!("--query-gpu={query}"),
        "--format=csv,noheader".to_string(),
    ];
    if let Some(id) = bus_id {
        args.extend(["-i".to_string(), id.to_string()]);
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
}

/// Other processes on the runner's GPU, which skew timings.
fn other_processes(bus_id: Option<&str>) {
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
                    bus_id.is_none_or(|id| same_bus(app_bus, id))
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
