// wino_none.cc: wino.h without oneDNN 2.x (a libtorch that does not run on
// Debian's libdnnl 2, e.g. PyTorch's wheels or libtorch 2.x on oneDNN 3):
// every convolution takes at::mkldnn_convolution's direct kernel.
#include "wino.h"

namespace jmedseg_wino {
bool try_conv(const at::Tensor &, const at::Tensor &, const c10::optional<at::Tensor> &, const int64_t *,
              at::Tensor *) {
  return false;
}
}  // namespace jmedseg_wino

extern "C" {
int jp_winograd_set(int) { return jmedseg_wino::kOff; }
int jp_winograd_mode(void) { return jmedseg_wino::kOff; }
int jp_winograd_available(void) { return 0; }
int64_t jp_winograd_cached(int64_t *bytes) {
  if (bytes != nullptr) *bytes = 0;
  return 0;
}
void jp_winograd_clear(void) {}
int64_t jp_winograd_set_buffers(int64_t) { return 0; }
int64_t jp_winograd_pieces(void) { return 0; }
}
