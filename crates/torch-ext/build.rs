//! Compiles csrc/autocast_shim.cpp and csrc/sync_bn_shim.cpp against the libtorch that
//! torch-sys links, and embeds that libtorch's directory as an rpath (as ../build_rpath.rs
//! does for the other crates).

use std::path::PathBuf;

const SHIMS: [&str; 2] = ["csrc/autocast_shim.cpp", "csrc/sync_bn_shim.cpp"];

fn main() {
    for shim in SHIMS {
        println!("cargo:rerun-if-changed={shim}");
    }
    println!("cargo:rerun-if-changed=csrc/swinface_guarded.h");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");

    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is unset: torch-sys did not report its libtorch directory");
    };
    let include = PathBuf::from(&lib_dir).join("../include");
    // The pip wheels (torch >= 2.7; 2.11 reports torch._C._GLIBCXX_USE_CXX11_ABI = True) and
    // the current libtorch archives use the C++11 ABI; torch-sys defaults to it the same way.
    let cxx11_abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());

    cc::Build::new()
        .cpp(true)
        .files(SHIMS)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi.as_str())
        // -isystem: libtorch's own headers are not ours to warn about.
        .flag("-isystem")
        .flag(include.to_string_lossy().as_ref())
        .flag("-isystem")
        .flag(
            include
                .join("torch/csrc/api/include")
                .to_string_lossy()
                .as_ref(),
        )
        .compile("swinface_torch_ext");

    // Same lines as ../build_rpath.rs: find libtorch without LD_LIBRARY_PATH, and keep
    // libtorch (with libtorch_cuda and the CUDA runtime) linked so that CUDA is usable.
    println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
