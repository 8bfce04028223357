//! A small, checked layer over the CUDA driver API (through cudarc's `result` bindings). Every
//! driver call of the CUDA runner is made here, so the runner has no `unsafe` block of its own:
//! it sees owned handles that free themselves and errors that say which call failed. NVRTC's
//! calls (unsafe too) are made in [`super::compile`].
//!
//! cudarc's higher-level API is not used on purpose: it records events and synchronises behind
//! the caller's back, which a timing harness cannot allow.

use std::ffi::{c_void, CString};

use cudarc::driver::result as cu;
use cudarc::driver::sys;

pub type Result<T> = std::result::Result<T, DriverError>;

/// What went wrong in a call to the driver, or in the arguments this layer was given.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A failed driver call, named: `cuLaunchKernel(attention): CUDA_ERROR_ILLEGAL_ADDRESS (an
    /// illegal memory access was encountered)`.
    #[error("{call}: {name} ({text})")]
    Call {
        call: String,
        name: String,
        text: String,
    },
    #[error("the CUDA driver sees no device")]
    NoDevice,
    #[error("guard element of {0} bytes")]
    GuardElement(usize),
    #[error("upload of {given} bytes into a {size}-byte buffer")]
    UploadSize { given: usize, size: usize },
    #[error("bad entry name {0:?}")]
    EntryName(String),
    #[error("{0}: cannot count its parameters")]
    ParameterCount(String),
}

fn fail(call: &str, err: cu::DriverError) -> DriverError {
    let name = err
        .error_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", err.0));
    let text = err
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    DriverError::Call {
        call: call.to_string(),
        name,
        text,
    }
}

/// Whether the CUDA driver library can be loaded. cudarc panics when it cannot, so this asks
/// first, and treats a panic as "no".
pub fn driver_present() -> bool {
    std::panic::catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false)
}

/// Whether NVRTC can be loaded.
pub fn nvrtc_present() -> bool {
    std::panic::catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

/// Facts about the device that go into reports and baselines.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: i32,
    pub l2_bytes: usize,
    pub max_shared_optin: i32,
    pub driver_version: i32,
    pub pci_bus_id: String,
    pub max_threads_per_sm: i32,
}

impl DeviceInfo {
    /// The driver's version as NVIDIA writes it: 12080 is `12.8`.
    pub fn driver_release(&self) -> String {
        let version = self.driver_version;
        format!("{}.{}", version / 1000, (version % 1000) / 10)
    }
}

/// Free device memory in bytes, on the device of the current context.
pub fn free_memory() -> Result<usize> {
    let (free, _total) = cu::mem_get_info().map_err(|e| fail("cuMemGetInfo", e))?;
    Ok(free)
}

/// The primary context of device 0 (pick devices with `CUDA_VISIBLE_DEVICES`), current on
/// this thread for as long as it lives.
pub struct Gpu {
    device: sys::CUdevice,
    pub info: DeviceInfo,
}

impl Gpu {
    pub fn open() -> Result<Gpu> {
        cu::init().map_err(|e| fail("cuInit", e))?;
        let count = cu::device::get_count().map_err(|e| fail("cuDeviceGetCount", e))?;
        if count == 0 {
            return Err(DriverError::NoDevice);
        }
        let device = cu::device::get(0).map_err(|e| fail("cuDeviceGet", e))?;
        unsafe {
            let ctx =
                cu::primary_ctx::retain(device).map_err(|e| fail("cuDevicePrimaryCtxRetain", e))?;
            cu::ctx::set_current(ctx).map_err(|e| fail("cuCtxSetCurrent", e))?;
        }
        let attribute = |attribute: sys::CUdevice_attribute, name: &str| -> Result<i32> {
            unsafe { cu::device::get_attribute(device, attribute) }.map_err(|e| fail(name, e))
        };
        use sys::CUdevice_attribute::*;
        let mut driver_version = 0;
        unsafe { sys::cuDriverGetVersion(&mut driver_version) }
            .result()
            .map_err(|e| fail("cuDriverGetVersion", e))?;
        let mut bus = [0 as std::ffi::c_char; 32];
        unsafe { sys::cuDeviceGetPCIBusId(bus.as_mut_ptr(), bus.len() as i32, device) }
            .result()
            .map_err(|e| fail("cuDeviceGetPCIBusId", e))?;
        let pci_bus_id = unsafe { std::ffi::CStr::from_ptr(bus.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let info = DeviceInfo {
            name: cu::device::get_name(device).map_err(|e| fail("cuDeviceGetName", e))?,
            compute_capability: (
                attribute(
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                    "compute capability",
                )?,
                attribute(
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                    "compute capability",
                )?,
            ),
            multiprocessors: attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "SM count")?,
            l2_bytes: attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, "L2 size")?.max(0) as usize,
            max_shared_optin: attribute(
                CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                "shared memory limit",
            )?,
            driver_version,
            pci_bus_id,
            max_threads_per_sm: attribute(
                CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR,
                "threads per SM",
            )?,
        };
        Ok(Gpu { device, info })
    }

    /// Waits for all work on the device (every stream of this context).
    pub fn synchronize(&self) -> Result<()> {
        cu::ctx::synchronize().map_err(|e| fail("cuCtxSynchronize", e))
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::primary_ctx::release(self.device);
        }
    }
}

/// Device memory with guard bands on both sides. The kernel sees only the middle; the bands hold
/// copies of a guard element (NaN for floating types), so a write past either end is caught even
/// when it does not fault, and a read past either end poisons what the kernel computes.
pub struct Buffer {
    base: sys::CUdeviceptr,
    bytes: usize,
    /// One guard band's contents.
    band: Vec<u8>,
}

/// Guard band size: large enough to catch off-by-a-row writes, and keeps the payload aligned.
pub const GUARD_BYTES: usize = 4096;

impl Buffer {
    /// `guard` is one element of the pattern the bands hold; its size must divide
    /// [`GUARD_BYTES`], so each band starts on an element boundary of the payload's type.
    pub fn new(bytes: usize, guard: &[u8]) -> Result<Buffer> {
        if guard.is_empty() || GUARD_BYTES % guard.len() != 0 {
            return Err(DriverError::GuardElement(guard.len()));
        }
        let total = bytes + 2 * GUARD_BYTES;
        let base = unsafe { cu::malloc_sync(total) }
            .map_err(|e| fail(&format!("cuMemAlloc({total} bytes)"), e))?;
        let band = guard.iter().copied().cycle().take(GUARD_BYTES).collect();
        let buffer = Buffer { base, bytes, band };
        buffer.reset_guards()?;
        Ok(buffer)
    }

    /// The address kernels receive.
    pub fn ptr(&self) -> sys::CUdeviceptr {
        self.base + GUARD_BYTES as u64
    }

    pub fn upload(&self, data: &[u8]) -> Result<()> {
        if data.len() != self.bytes {
            return Err(DriverError::UploadSize {
                given: data.len(),
                size: self.bytes,
            });
        }
        unsafe { cu::memcpy_htod_sync(self.ptr(), data) }.map_err(|e| fail("cuMemcpyHtoD", e))
    }

    pub fn download(&self) -> Result<Vec<u8>> {
        let mut data = vec![0u8; self.bytes];
        unsafe { cu::memcpy_dtoh_sync(&mut data, self.ptr()) }
            .map_err(|e| fail("cuMemcpyDtoH", e))?;
        Ok(data)
    }

    /// Fills the payload with copies of `element`.
    pub fn fill(&self, element: &[u8]) -> Result<()> {
        let data: Vec<u8> = element.iter().copied().cycle().take(self.bytes).collect();
        self.upload(&data)
    }

    /// Sets every payload byte to `value` on `stream`, without waiting.
    pub fn memset_async(&self, value: u8, stream: &Stream) -> Result<()> {
        unsafe { cu::memset_d8_async(self.ptr(), value, self.bytes, stream.raw) }
            .map_err(|e| fail("cuMemsetD8Async", e))
    }

    /// Bytes changed in the guard bands before and after the payload.
    pub fn guard_damage(&self) -> Result<(usize, usize)> {
        let mut before = vec![0u8; GUARD_BYTES];
        let mut after = vec![0u8; GUARD_BYTES];
        unsafe {
            cu::memcpy_dtoh_sync(&mut before, self.base).map_err(|e| fail("cuMemcpyDtoH", e))?;
            cu::memcpy_dtoh_sync(&mut after, self.ptr() + self.bytes as u64)
                .map_err(|e| fail("cuMemcpyDtoH", e))?;
        }
        let damaged = |band: &[u8]| band.iter().zip(&self.band).filter(|(a, b)| a != b).count();
        Ok((damaged(&before), damaged(&after)))
    }

    /// Writes the guard pattern into both bands (at creation, and after damage was reported).
    pub fn reset_guards(&self) -> Result<()> {
        unsafe {
            cu::memcpy_htod_sync(self.base, &self.band)
                .and_then(|()| cu::memcpy_htod_sync(self.ptr() + self.bytes as u64, &self.band))
                .map_err(|e| fail("cuMemcpyHtoD", e))
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::free_sync(self.base);
        }
    }
}

/// Plain device memory, for the L2 flush.
pub struct Scratch {
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl Scratch {
    pub fn new(bytes: usize) -> Result<Scratch> {
        let ptr = unsafe { cu::malloc_sync(bytes) }
            .map_err(|e| fail(&format!("cuMemAlloc({bytes} bytes)"), e))?;
        Ok(Scratch { ptr, bytes })
    }

    /// Overwrites the whole buffer on `stream`: with the buffer at least twice L2, nothing the
    /// kernel reads is left in L2 afterwards.
    pub fn overwrite(&self, stream: &Stream, value: u8) -> Result<()> {
        unsafe { cu::memset_d8_async(self.ptr, value, self.bytes, stream.raw) }
            .map_err(|e| fail("cuMemsetD8Async", e))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::free_sync(self.ptr);
        }
    }
}

pub struct Stream {
    raw: sys::CUstream,
}

impl Stream {
    /// A blocking stream: it orders with the legacy default stream, where the synchronous
    /// uploads, fills and downloads of [`Buffer`] run, so a kernel never races its inputs.
    pub fn new() -> Result<Stream> {
        let raw = cu::stream::create(cu::stream::StreamKind::Default)
            .map_err(|e| fail("cuStreamCreate", e))?;
        Ok(Stream { raw })
    }

    pub fn wait(&self, event: &Event) -> Result<()> {
        unsafe {
            cu::stream::wait_event(
                self.raw,
                event.raw,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .map_err(|e| fail("cuStreamWaitEvent", e))
    }

    pub fn synchronize(&self) -> Result<()> {
        unsafe { cu::stream::synchronize(self.raw) }.map_err(|e| fail("cuStreamSynchronize", e))
    }

    /// Records everything enqueued on this stream until [`Stream::end_capture`] into a graph.
    pub fn begin_capture(&self) -> Result<()> {
        unsafe {
            cu::stream::begin_capture(
                self.raw,
                sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
        }
        .map_err(|e| fail("cuStreamBeginCapture", e))
    }

    pub fn end_capture(&self) -> Result<Graph> {
        let graph = unsafe { cu::stream::end_capture(self.raw) }
            .map_err(|e| fail("cuStreamEndCapture", e))?;
        let exec = unsafe { cu::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0)) };
        let exec = match exec {
            Ok(exec) => exec,
            Err(e) => {
                unsafe {
                    let _ = cu::graph::destroy(graph);
                }
                return Err(fail("cuGraphInstantiate", e));
            }
        };
        Ok(Graph { graph, exec })
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::stream::destroy(self.raw);
        }
    }
}

/// A captured, instantiated graph.
pub struct Graph {
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
}

impl Graph {
    pub fn launch(&self, stream: &Stream) -> Result<()> {
        unsafe { cu::graph::launch(self.exec, stream.raw) }.map_err(|e| fail("cuGraphLaunch", e))
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::graph::exec_destroy(self.exec);
            let _ = cu::graph::destroy(self.graph);
        }
    }
}

/// A timing event (created with `CU_EVENT_DEFAULT`: timing enabled).
pub struct Event {
    raw: sys::CUevent,
}

impl Event {
    pub fn new() -> Result<Event> {
        let raw = cu::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
            .map_err(|e| fail("cuEventCreate", e))?;
        Ok(Event { raw })
    }

    pub fn record(&self, stream: &Stream) -> Result<()> {
        unsafe { cu::event::record(self.raw, stream.raw) }.map_err(|e| fail("cuEventRecord", e))
    }

    /// Milliseconds from `self` to `end`; both must have completed.
    pub fn elapsed_ms(&self, end: &Event) -> Result<f32> {
        unsafe { cu::event::elapsed(self.raw, end.raw) }.map_err(|e| fail("cuEventElapsedTime", e))
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::event::destroy(self.raw);
        }
    }
}

/// A loaded module (from a CUBIN image).
pub struct Module {
    raw: sys::CUmodule,
}

impl Module {
    pub fn load(image: &[u8]) -> Result<Module> {
        let raw = unsafe { cu::module::load_data(image.as_ptr() as *const c_void) }
            .map_err(|e| fail("cuModuleLoadData", e))?;
        Ok(Module { raw })
    }

    pub fn function(&self, entry: &str) -> Result<Function> {
        let name = CString::new(entry).map_err(|_| DriverError::EntryName(entry.to_string()))?;
        let raw = unsafe { cu::module::get_function(self.raw, name) }.map_err(|e| {
            fail(
                &format!("cuModuleGetFunction({entry}): is it declared extern \"C\" __global__?"),
                e,
            )
        })?;
        Ok(Function {
            raw,
            name: entry.to_string(),
        })
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        unsafe {
            let _ = cu::module::unload(self.raw);
        }
    }
}

/// A kernel entry point. Valid while its [`Module`] lives; the runner keeps both together.
pub struct Function {
    raw: sys::CUfunction,
    pub name: String,
}

/// A kernel argument's bytes, as `cuLaunchKernel` reads them.
#[derive(Debug, Clone, Copy)]
pub enum ArgValue {
    Ptr(sys::CUdeviceptr),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
}

impl ArgValue {
    /// Bytes the kernel parameter must have.
    pub fn size(&self) -> usize {
        match self {
            ArgValue::I32(_) | ArgValue::U32(_) | ArgValue::F32(_) => 4,
            ArgValue::Ptr(_) | ArgValue::I64(_) | ArgValue::U64(_) | ArgValue::F64(_) => 8,
        }
    }
}

/// What the compiled function needs per thread and per block, from the driver.
#[derive(Debug, Clone, Copy)]
pub struct FunctionResources {
    pub registers: i32,
    pub local_bytes: i32,
    pub static_shared_bytes: i32,
}

impl Function {
    pub fn resources(&self) -> Result<FunctionResources> {
        use sys::CUfunction_attribute::*;
        let get = |attribute, what: &str| {
            unsafe { cu::function::get_function_attribute(self.raw, attribute) }
                .map_err(|e| fail(&format!("cuFuncGetAttribute({}, {what})", self.name), e))
        };
        Ok(FunctionResources {
            registers: get(CU_FUNC_ATTRIBUTE_NUM_REGS, "registers")?,
            local_bytes: get(CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, "local memory")?,
            static_shared_bytes: get(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "shared memory")?,
        })
    }

    /// Blocks of `threads` threads with `dynamic_shared` bytes that fit on one SM at once.
    pub fn blocks_per_sm(&self, threads: u32, dynamic_shared: u32) -> Result<i32> {
        unsafe {
            cu::occupancy::max_active_block_per_multiprocessor(
                self.raw,
                threads as i32,
                dynamic_shared as usize,
            )
        }
        .map_err(|e| {
            fail(
                &format!("cuOccupancyMaxActiveBlocksPerMultiprocessor({})", self.name),
                e,
            )
        })
    }

    /// The byte size of each parameter the kernel declares, so a launch with the wrong number
    /// or width of arguments is refused instead of reading past the argument list.
    pub fn param_sizes(&self) -> Result<Vec<usize>> {
        let mut sizes = Vec::new();
        loop {
            let (mut offset, mut size) = (0usize, 0usize);
            let result =
                unsafe { sys::cuFuncGetParamInfo(self.raw, sizes.len(), &mut offset, &mut size) };
            match result {
                sys::CUresult::CUDA_SUCCESS => sizes.push(size),
                sys::CUresult::CUDA_ERROR_INVALID_VALUE => return Ok(sizes),
                other => {
                    return Err(fail(
                        &format!("cuFuncGetParamInfo({})", self.name),
                        cu::DriverError(other),
                    ))
                }
            }
            if sizes.len() > 4096 {
                return Err(DriverError::ParameterCount(self.name.clone()));
            }
        }
    }

    /// Allows more than 48 KiB of dynamic shared memory, which the driver requires opting into.
    pub fn allow_shared(&self, bytes: u32) -> Result<()> {
        unsafe {
            cu::function::set_function_attribute(
                self.raw,
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
        }
        .map_err(|e| {
            fail(
                &format!(
                    "cuFuncSetAttribute({}, {bytes} bytes of shared memory)",
                    self.name
                ),
                e,
            )
        })
    }

    pub fn launch(
        &self,
        grid: [u32; 3],
        block: [u32; 3],
        shared_bytes: u32,
        stream: &Stream,
        args: &[ArgValue],
    ) -> Result<()> {
        // Each argument lives in its own 8-byte slot; the driver reads as many bytes as the
        // parameter's type needs, little-endian from the start of the slot.
        let mut slots: Vec<u64> = args
            .iter()
            .map(|arg| match *arg {
                ArgValue::Ptr(p) => p,
                ArgValue::I32(v) => u64::from(v as u32),
                ArgValue::I64(v) => v as u64,
                ArgValue::U32(v) => u64::from(v),
                ArgValue::U64(v) => v,
                ArgValue::F32(v) => u64::from(v.to_bits()),
                ArgValue::F64(v) => v.to_bits(),
            })
            .collect();
        let mut params: Vec<*mut c_void> = slots
            .iter_mut()
            .map(|slot| slot as *mut u64 as *mut c_void)
            .collect();
        unsafe {
            cu::launch_kernel(
                self.raw,
                (grid[0], grid[1], grid[2]),
                (block[0], block[1], block[2]),
                shared_bytes,
                stream.raw,
                &mut params,
            )
        }
        .map_err(|e| fail(&format!("cuLaunchKernel({})", self.name), e))
    }
}
