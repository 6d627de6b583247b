fn main() {
    let t = tch::Tensor::ones([2, 2], (tch::Kind::Float, tch::Device::Cpu));
    println!(
        "{} cuda={}",
        t.sum(tch::Kind::Float),
        tch::Cuda::is_available()
    );
}
