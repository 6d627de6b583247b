//! PyTorch's c10d `TCPStore` (the key-value store torchrun and `torch.distributed` rendezvous
//! through), reached through csrc/store_shim.cpp. Rank 0 hosts the server; every rank,
//! rank 0 included, is a client.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;

use crate::env::DistEnv;
use crate::error::{DistError, Result};

pub(crate) mod ffi {
    use std::ffi::{c_char, c_int};

    #[repr(C)]
    pub struct Store {
        _private: [u8; 0],
    }

    extern "C" {
        pub fn swinface_store_new(
            host: *const c_char,
            port: u16,
            is_server: c_int,
            world_size: usize,
            wait_workers: c_int,
            timeout_ms: i64,
            out: *mut *mut Store,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_free(store: *mut Store);
        pub fn swinface_store_port(store: *const Store) -> u16;
        pub fn swinface_store_set(
            store: *mut Store,
            key: *const c_char,
            data: *const u8,
            length: usize,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_get(
            store: *mut Store,
            key: *const c_char,
            data: *mut *mut u8,
            length: *mut usize,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_free_bytes(data: *mut u8);
        pub fn swinface_store_add(
            store: *mut Store,
            key: *const c_char,
            delta: i64,
            value: *mut i64,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_delete(
            store: *mut Store,
            key: *const c_char,
            deleted: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_check(
            store: *mut Store,
            keys: *const *const c_char,
            count: usize,
            present: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_num_keys(
            store: *mut Store,
            count: *mut i64,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_store_wait(
            store: *mut Store,
            keys: *const *const c_char,
            count: usize,
            timeout_ms: i64,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
    }
}

/// Room for the message of a caught C++ exception.
const ERROR_BUFFER: usize = 2048;

/// A connection to a TCPStore (and, on the hosting rank, the server itself).
pub struct TcpStore {
    raw: NonNull<ffi::Store>,
    port: u16,
}

// SAFETY: c10d::TCPStore serialises its client calls with an internal mutex
// (`activeOpLock_`), and the handle is only freed on drop.
unsafe impl Send for TcpStore {}
unsafe impl Sync for TcpStore {}

fn c_string(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| DistError::NulByte(text.to_owned()))
}

fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Runs one shim call with an error buffer; a non-zero status becomes `DistError::Store`.
fn call(op: &'static str, key: &str, body: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut buffer = vec![0 as c_char; ERROR_BUFFER];
    let status = body(buffer.as_mut_ptr(), buffer.len());
    if status == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within the buffer.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(DistError::Store {
        op,
        key: key.to_owned(),
        message,
    })
}

impl TcpStore {
    /// Hosts a store on `port` (0: a free port, see [`Self::port`]) and connects to it.
    /// With `wait_for` set, returns once that many clients (this one included) joined, or
    /// fails after `timeout`. `timeout` is also the store's default for blocking reads.
    pub fn host(port: u16, wait_for: Option<usize>, timeout: Duration) -> Result<Self> {
        Self::open("0.0.0.0", port, true, wait_for, timeout)
    }

    /// Connects to the store at `host:port`, retrying until `timeout`.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Self> {
        Self::open(host, port, false, None, timeout)
    }

    /// The rendezvous of a torchrun-style launch: rank 0 hosts on MASTER_PORT and waits for
    /// every rank to join; the others connect to MASTER_ADDR:MASTER_PORT and count
    /// themselves in (as `torch.distributed.TCPStore(..., wait_for_workers=True)` does).
    pub fn rendezvous(env: &DistEnv, timeout: Duration) -> Result<Self> {
        if env.rank == 0 {
            Self::host(env.master_port, Some(env.world_size), timeout)
        } else {
            Self::open(
                &env.master_addr,
                env.master_port,
                false,
                Some(env.world_size),
                timeout,
            )
        }
    }

    fn open(
        host: &str,
        port: u16,
        is_server: bool,
        wait_for: Option<usize>,
        timeout: Duration,
    ) -> Result<Self> {
        let c_host = c_string(host)?;
        let mut raw: *mut ffi::Store = std::ptr::null_mut();
        let key = format!("{host}:{port}");
        call("connect", &key, |error, length| unsafe {
            // SAFETY: valid NUL-terminated host, out-pointer and error buffer.
            ffi::swinface_store_new(
                c_host.as_ptr(),
                port,
                c_int::from(is_server),
                wait_for.unwrap_or(0),
                c_int::from(wait_for.is_some()),
                millis(timeout),
                &mut raw,
                error,
                length,
            )
        })?;
        let raw = NonNull::new(raw).ok_or_else(|| DistError::Store {
            op: "connect",
            key,
            message: "the shim returned no store".into(),
        })?;
        // SAFETY: raw is a live store.
        let port = unsafe { ffi::swinface_store_port(raw.as_ptr()) };
        Ok(Self { raw, port })
    }

    /// The shim's handle, for the NCCL process group's rendezvous.
    #[cfg(feature = "nccl")]
    pub(crate) fn raw(&self) -> *mut ffi::Store {
        self.raw.as_ptr()
    }

    /// The port the store listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let c_key = c_string(key)?;
        call("set", key, |error, length| unsafe {
            // SAFETY: key and value outlive the call.
            ffi::swinface_store_set(
                self.raw.as_ptr(),
                c_key.as_ptr(),
                value.as_ptr(),
                value.len(),
                error,
                length,
            )
        })
    }

    /// The value of `key`, waiting for it up to the store's timeout.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let c_key = c_string(key)?;
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size = 0usize;
        call("get", key, |error, length| unsafe {
            // SAFETY: out-pointers valid for the call.
            ffi::swinface_store_get(
                self.raw.as_ptr(),
                c_key.as_ptr(),
                &mut data,
                &mut size,
                error,
                length,
            )
        })?;
        if data.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: the shim malloc'ed `size` bytes (at least 1) at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(data, size) }.to_vec();
        unsafe { ffi::swinface_store_free_bytes(data) };
        Ok(bytes)
    }

    /// Adds `delta` to the integer at `key` (created as 0) and returns the new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64> {
        let c_key = c_string(key)?;
        let mut value = 0i64;
        call("add", key, |error, length| unsafe {
            // SAFETY: out-pointer valid for the call.
            ffi::swinface_store_add(
                self.raw.as_ptr(),
                c_key.as_ptr(),
                delta,
                &mut value,
                error,
                length,
            )
        })?;
        Ok(value)
    }

    /// Deletes `key`; false when it did not exist.
    pub fn delete(&self, key: &str) -> Result<bool> {
        let c_key = c_string(key)?;
        let mut deleted: c_int = 0;
        call("delete", key, |error, length| unsafe {
            // SAFETY: out-pointer valid for the call.
            ffi::swinface_store_delete(
                self.raw.as_ptr(),
                c_key.as_ptr(),
                &mut deleted,
                error,
                length,
            )
        })?;
        Ok(deleted != 0)
    }

    /// Whether every key exists (without waiting).
    pub fn check(&self, keys: &[String]) -> Result<bool> {
        let c_keys = keys
            .iter()
            .map(|k| c_string(k))
            .collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const c_char> = c_keys.iter().map(|k| k.as_ptr()).collect();
        let mut present: c_int = 0;
        call("check", &keys.join(","), |error, length| unsafe {
            // SAFETY: the key pointers outlive the call.
            ffi::swinface_store_check(
                self.raw.as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                &mut present,
                error,
                length,
            )
        })?;
        Ok(present != 0)
    }

    /// How many keys the store holds (the server's own bookkeeping keys included).
    pub fn num_keys(&self) -> Result<i64> {
        let mut count = 0i64;
        call("num_keys", "", |error, length| unsafe {
            // SAFETY: out-pointer valid for the call.
            ffi::swinface_store_num_keys(self.raw.as_ptr(), &mut count, error, length)
        })?;
        Ok(count)
    }

    /// Waits until every key exists; an error after `timeout`.
    pub fn wait(&self, keys: &[String], timeout: Duration) -> Result<()> {
        let c_keys = keys
            .iter()
            .map(|k| c_string(k))
            .collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const c_char> = c_keys.iter().map(|k| k.as_ptr()).collect();
        call("wait", &keys.join(","), |error, length| unsafe {
            // SAFETY: the key pointers outlive the call.
            ffi::swinface_store_wait(
                self.raw.as_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                millis(timeout),
                error,
                length,
            )
        })
    }
}

impl Drop for TcpStore {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once.
        unsafe { ffi::swinface_store_free(self.raw.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_add_check_delete_and_wait_round_trip() {
        let timeout = Duration::from_secs(20);
        let server = TcpStore::host(0, None, timeout).unwrap();
        let client = TcpStore::connect("127.0.0.1", server.port(), timeout).unwrap();
        client.set("a", b"hello\0world").unwrap();
        assert_eq!(server.get("a").unwrap(), b"hello\0world");
        client.set("empty", b"").unwrap();
        assert_eq!(server.get("empty").unwrap(), b"");
        assert_eq!(server.add("n", 2).unwrap(), 2);
        assert_eq!(client.add("n", 5).unwrap(), 7);
        assert!(client.check(&["a".into(), "n".into()]).unwrap());
        assert!(!client.check(&["a".into(), "missing".into()]).unwrap());
        assert!(client.delete("a").unwrap());
        assert!(!client.delete("a").unwrap());
        assert!(!server.check(&["a".into()]).unwrap());

        let started = std::time::Instant::now();
        let err = client
            .wait(&["never".into()], Duration::from_millis(300))
            .unwrap_err();
        assert!(matches!(err, DistError::Store { op: "wait", .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The client is still usable after a timed-out wait.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                server.set("later", b"1").unwrap();
            });
            client.wait(&["later".into()], timeout).unwrap();
        });
    }

    #[test]
    fn connecting_to_nobody_fails_within_the_timeout() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let err = TcpStore::connect("127.0.0.1", port, Duration::from_secs(2))
            .err()
            .expect("no server");
        assert!(
            matches!(err, DistError::Store { op: "connect", .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}
