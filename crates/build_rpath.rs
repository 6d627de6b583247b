// Shared build script: lets every binary and test executable find libtorch without
// LD_LIBRARY_PATH by embedding the pip wheel's lib directory as an rpath.
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={dir}");
    }
    // Keep libtorch (and with it libtorch_cuda) linked even though only the C wrapper calls it,
    // so CUDA is available whenever the machine has a GPU.
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
