//! Compiles csrc/store_shim.cpp (and, with the `nccl` feature, csrc/nccl_shim.cpp) against
//! the libtorch that torch-sys links, as crates/torch-ext/build.rs does, and links
//! libtorch_cpu, where c10d's TCPStore lives, with libtorch's directory as an rpath.

use std::path::{Path, PathBuf};

const STORE_SHIM: &str = "csrc/store_shim.cpp";
const NCCL_SHIM: &str = "csrc/nccl_shim.cpp";
/// The exception-to-status helper every shim shares, kept beside torch-ext's shims.
const GUARDED_DIR: &str = "../torch-ext/csrc";

fn libtorch_build(include: &Path, cxx11_abi: &str) -> cc::Build {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .include(GUARDED_DIR)
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", cxx11_abi)
        // -isystem: libtorch's own headers are not ours to warn about.
        .flag("-isystem")
        .flag(include.to_string_lossy().as_ref())
        .flag("-isystem")
        .flag(
            include
                .join("torch/csrc/api/include")
                .to_string_lossy()
                .as_ref(),
        );
    build
}

/// The CUDA and NCCL include directories: `$CUDA_HOME/include`, the directories in
/// `SWINFACE_CUDA_INCLUDE` (colon-separated), and the `nvidia/*/include` directories of the
/// pip packages beside torch. The CUDA runtime headers need `crt/host_config.h`, which the
/// wheels' runtime package lacks and `cuda-toolkit[nvcc]` provides.
fn cuda_includes(lib_dir: &str) -> Result<Vec<PathBuf>, String> {
    let mut dirs = Vec::new();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        dirs.push(PathBuf::from(home).join("include"));
    }
    if let Ok(extra) = std::env::var("SWINFACE_CUDA_INCLUDE") {
        dirs.extend(std::env::split_paths(&extra));
    }
    let nvidia = PathBuf::from(lib_dir).join("../../nvidia");
    if let Ok(entries) = std::fs::read_dir(&nvidia) {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("include"))
            .filter(|d| d.is_dir())
            .collect();
        found.sort();
        dirs.extend(found);
    }
    let has = |file: &str| dirs.iter().any(|d| d.join(file).is_file());
    for (file, hint) in [
        (
            "crt/host_config.h",
            "pip install \"cuda-toolkit[nvcc,cccl]==13.0.2\" (or set CUDA_HOME)",
        ),
        (
            "nccl.h",
            "the nvidia-nccl wheel torch depends on (or set SWINFACE_CUDA_INCLUDE)",
        ),
    ] {
        if !has(file) {
            return Err(format!("the nccl feature needs {file}: {hint}"));
        }
    }
    Ok(dirs)
}

fn main() {
    println!("cargo:rerun-if-changed={STORE_SHIM}");
    println!("cargo:rerun-if-changed={NCCL_SHIM}");
    println!("cargo:rerun-if-changed=csrc/store_shim.h");
    println!("cargo:rerun-if-changed={GUARDED_DIR}/swinface_guarded.h");
    println!("cargo:rerun-if-env-changed=SWINFACE_CUDA_INCLUDE");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");

    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is unset: torch-sys did not report its libtorch directory");
    };
    let include = PathBuf::from(&lib_dir).join("../include");
    // The pip wheels (torch >= 2.7) use the C++11 ABI; torch-sys defaults to it the same way.
    let cxx11_abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());

    libtorch_build(&include, &cxx11_abi)
        .file(STORE_SHIM)
        .compile("swinface_store_shim");

    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        let cuda = cuda_includes(&lib_dir).unwrap_or_else(|message| panic!("{message}"));
        let mut build = libtorch_build(&include, &cxx11_abi);
        build.define("USE_C10D_NCCL", None);
        for dir in &cuda {
            build.flag("-isystem").flag(dir.to_string_lossy().as_ref());
        }
        build.file(NCCL_SHIM).compile("swinface_nccl_shim");
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }

    println!("cargo:rustc-link-search=native={lib_dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    // c10d's TCPStore lives in libtorch_cpu; link-lib (unlike link-arg) reaches the binaries
    // of the crates that depend on this one.
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
