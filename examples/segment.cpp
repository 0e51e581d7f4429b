// segment: a C++ host of libjmedseg. It loads a model trained by
// `jmedseg train`, segments an 8-bit grey or RGB PNG and writes the label map
// as a PNG of class ids, the file `jmedseg predict` writes.
//
//   segment CHECKPOINT INPUT.png OUTPUT.png [--device cpu|cuda|cuda:N|auto] [--force]
//
// PNGs are read with libpng's raw samples (palettes expanded, alpha dropped,
// 16-bit samples cut to 8 bits; no gamma correction), as jmedseg's reader
// sees 8-bit files. The output is written to a temporary file and renamed, and
// an existing one is replaced only with --force.
#include <jmedseg/jmedseg.h>
#include <png.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

struct Image {
  int64_t h = 0, w = 0, channels = 0;
  std::vector<uint8_t> pixels;  // row-major, channels interleaved
};

struct File {
  FILE *f;
  explicit File(const std::string &path, const char *mode) : f(std::fopen(path.c_str(), mode)) {
    if (!f) throw std::runtime_error(path + ": " + std::strerror(errno));
  }
  ~File() {
    if (f) std::fclose(f);
  }
};

// read_png returns the 8-bit grey or RGB samples of a PNG file.
Image read_png(const std::string &path) {
  File in(path, "rb");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) throw std::runtime_error(path + ": out of memory");
  Image img;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error(path + ": not a readable PNG");
  }
  png_init_io(png, in.f);
  png_read_png(png, info,
               PNG_TRANSFORM_EXPAND | PNG_TRANSFORM_STRIP_16 | PNG_TRANSFORM_STRIP_ALPHA | PNG_TRANSFORM_PACKING,
               nullptr);
  img.h = png_get_image_height(png, info);
  img.w = png_get_image_width(png, info);
  img.channels = png_get_channels(png, info);
  png_bytepp rows = png_get_rows(png, info);
  img.pixels.resize(size_t(img.h * img.w * img.channels));
  for (int64_t y = 0; y < img.h; y++)
    std::memcpy(&img.pixels[size_t(y * img.w * img.channels)], rows[y], size_t(img.w * img.channels));
  png_destroy_read_struct(&png, &info, nullptr);
  if (img.channels != 1 && img.channels != 3) throw std::runtime_error(path + ": not a grey or RGB PNG");
  return img;
}

// write_png writes an 8-bit grey PNG atomically (a temporary file renamed).
void write_png(const std::string &path, const std::vector<uint8_t> &grey, int64_t h, int64_t w) {
  std::string tmp = path + ".tmp";
  png_image out{};
  out.version = PNG_IMAGE_VERSION;
  out.width = png_uint_32(w);
  out.height = png_uint_32(h);
  out.format = PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&out, tmp.c_str(), 0, grey.data(), 0, nullptr))
    throw std::runtime_error(tmp + ": cannot write: " + out.message);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": " + why);
  }
}

// check turns a jms_error into an exception; Model owns a jms_model.
void check(jms_error *e) {
  if (!e) return;
  std::string msg = jms_error_message(e);
  jms_error_free(e);
  throw std::runtime_error(msg);
}
using Model = std::unique_ptr<jms_model, decltype(&jms_free)>;

Model load(const std::string &checkpoint, const std::string &device) {
  jms_error *err = nullptr;
  Model m(jms_load(checkpoint.c_str(), device.c_str(), &err), jms_free);
  check(err);
  return m;
}

}  // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args;
  std::string device = "cpu";
  bool force = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--force") {
      force = true;
    } else if (a == "--device" && i + 1 < argc) {
      device = argv[++i];
    } else {
      args.push_back(a);
    }
  }
  if (args.size() != 3) {
    std::fprintf(stderr, "usage: segment CHECKPOINT INPUT.png OUTPUT.png [--device cpu|cuda|cuda:N|auto] [--force]\n");
    return 2;
  }
  const std::string &checkpoint = args[0], &input = args[1], &output = args[2];
  try {
    struct stat st;
    if (!force && stat(output.c_str(), &st) == 0)
      throw std::runtime_error(output + " exists: give --force to replace it");
    Model model = load(checkpoint, device);
    Image img = read_png(input);
    std::vector<uint8_t> labels(size_t(img.h * img.w));
    check(jms_predict_u8(model.get(), img.pixels.data(), img.h, img.w, img.channels, labels.data()));
    write_png(output, labels, img.h, img.w);
    jms_info info;
    check(jms_info_get(model.get(), &info));
    std::printf("%s: %lldx%lld, %s (%lld classes) -> %s\n", input.c_str(), (long long)img.h, (long long)img.w,
                info.model, (long long)info.classes, output.c_str());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "segment: %s\n", e.what());
    return 1;
  }
  return 0;
}
