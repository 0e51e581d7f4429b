// jit_load: runs a TorchScript module that `jmedseg export` wrote, with
// libtorch alone (no jmedseg), as a C++ host would:
//
//   jit_load MODEL.pt INPUT.f32 N C H W OUTPUT.f32
//
// INPUT.f32 holds N*C*H*W raw pixel values (float32, little-endian, NCHW);
// OUTPUT.f32 gets the logits. It prints the module's class names, input
// size and the logits' shape. The export tests build and run it.
#include <torch/script.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc != 8) {
    std::cerr << "usage: jit_load MODEL.pt INPUT.f32 N C H W OUTPUT.f32\n";
    return 2;
  }
  try {
    const int64_t n = std::atoll(argv[3]), c = std::atoll(argv[4]), h = std::atoll(argv[5]), w = std::atoll(argv[6]);
    torch::jit::Module m = torch::jit::load(argv[1]);
    m.eval();

    std::vector<float> in(static_cast<size_t>(n * c * h * w));
    std::ifstream fin(argv[2], std::ios::binary);
    fin.read(reinterpret_cast<char *>(in.data()), static_cast<std::streamsize>(in.size() * sizeof(float)));
    if (!fin) throw std::runtime_error(std::string("cannot read ") + argv[2]);
    at::Tensor x = torch::from_blob(in.data(), {n, c, h, w}, torch::kFloat32);

    torch::NoGradGuard no_grad;
    at::Tensor y = m.forward({x}).toTensor().contiguous();

    std::cout << "classes:";
    for (const auto &name : m.attr("class_names").toListRef()) std::cout << ' ' << name.toStringRef();
    auto size = m.attr("input_size").toIntVector();
    std::cout << "\ninput_size: " << size[0] << 'x' << size[1] << "\nlogits: " << y.sizes() << '\n';

    std::ofstream fout(argv[7], std::ios::binary);
    fout.write(reinterpret_cast<const char *>(y.data_ptr<float>()), static_cast<std::streamsize>(y.numel() * sizeof(float)));
    if (!fout) throw std::runtime_error(std::string("cannot write ") + argv[7]);
  } catch (const std::exception &e) {
    std::cerr << "jit_load: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
