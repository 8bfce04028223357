//! `gatekeeper doctor`: what a runner's owner checks before trusting its timings.

use std::process::Command;

use crate::cuda::{compile, driver};
use crate::exit;

/// One line per check; exit 0 when CUDA kernels can run here, 2 when they cannot.
pub fn run() -> u8 {
    let mut usable = true;
    let line = |ok: bool, what: &str, detail: String| {
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
    };

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
    match first_line(
        "nvidia-smi",
        &[&format!("--query-gpu={query}"), "--format=csv,noheader"],
    ) {
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
            "--query-compute-apps=pid,process_name,used_memory",
            "--format=csv,noheader",
        ])
        .output()
    {
        Ok(out) if out.status.success() => {
            let apps = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if apps.is_empty() {
                line(true, "other processes", "none on the GPU".into());
            } else {
                line(
                    false,
                    "other processes",
                    format!(
                        "sharing the GPU skews timings: {}",
                        apps.replace('\n', "; ")
                    ),
                );
            }
        }
        _ => line(false, "other processes", "nvidia-smi not available".into()),
    }
    if usable {
        exit::PASS
    } else {
        println!("CUDA kernels cannot run on this machine.");
        exit::USAGE_OR_ENVIRONMENT
    }
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
